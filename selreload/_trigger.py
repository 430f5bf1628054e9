"""Coalescing reload requests: triggers that arrive during a reload fold into one more.

Watchers, signals and etcd call `request()` from their own threads. The first caller
becomes the drainer and reloads until nothing is pending; callers that arrive meanwhile
only leave their trigger behind. A request from inside a reload (an applier or
subscriber) is deferred until that reload ends, on the same thread.

The drainer's state is reset in a `finally`: whatever a reload raises (even
`SystemExit` from an applier on a watcher thread) leaves the coalescer ready for the
next trigger, instead of a "draining" flag that silently swallows every later save.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("selreload.reload")


class Coalescer:
    """Runs `reload(trigger)` for requests, one drainer at a time.

    Args:
        reload: runs one reload; exceptions are logged and draining goes on.
        inside: whether the calling thread is inside a reload right now.
        name: the config name, for log lines.
    """

    __slots__ = ("_deferred", "_draining", "_inside", "_lock", "_name", "_pending", "_reload")

    def __init__(self, reload: Callable[[str], object], *, inside: Callable[[], bool], name: str) -> None:
        self._reload = reload
        self._inside = inside
        self._name = name
        self._lock = threading.Lock()
        self._pending: str | None = None
        self._draining = False
        self._deferred = False

    def __repr__(self) -> str:
        state = "draining" if self._draining else "idle"
        return f"<Coalescer {self._name!r} {state}, pending={self._pending!r}>"

    @property
    def pending(self) -> str | None:
        """The trigger waiting to run, if any."""
        return self._pending

    def request(self, trigger: str) -> None:
        """Reload now, or after the reload that is running (without waiting for it)."""
        with self._lock:
            self._pending = self._pending or trigger
            if self._inside():
                self._deferred = True  # asked from inside a reload: run it once that ends
                return
            if self._draining:
                return
            self._draining = True
        try:
            while True:
                with self._lock:
                    pending, self._pending = self._pending, None
                    if pending is None:
                        # In the same critical section as the check: a request arriving
                        # after it sees `_draining` False and drains itself.
                        self._draining = False
                        return
                try:
                    self._reload(pending)
                except Exception:  # a watcher thread must survive anything a reload raises
                    log.exception("config %r: reload from %s failed unexpectedly", self._name, pending)
        except BaseException:
            # SystemExit, KeyboardInterrupt: they propagate, but the next trigger still
            # finds a coalescer that drains (what is pending now runs with it).
            with self._lock:
                self._draining = False
            raise

    def run_deferred(self) -> None:
        """Run a request made from inside the reload that just ended."""
        if self._deferred and not self._inside():
            self._deferred = False
            self.request(self._pending or "manual")

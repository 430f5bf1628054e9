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
import os
import threading
import weakref
from collections.abc import Callable, Sequence

from ._mask import exc_summary
from ._signals import SignalTrigger
from ._typing import Source, Watcher
from ._values import one_line

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
                except Exception as exc:  # noqa: BLE001 - a watcher thread must survive anything a reload raises
                    # By type and frames: the message may quote a secret (`_mask.exc_summary`).
                    log.error(
                        "config %r: reload from %s failed unexpectedly: %s", self._name, pending, exc_summary(exc)
                    )
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


class Triggers:
    """What makes a Reloader reload by itself: the sources' watchers and signals.

    Watchers call `notify`, which never lets anything escape into the watcher's thread:
    a reload that raises `SystemExit` (an applier calling `sys.exit()`) is rolled back and
    recorded by the Reloader, and the watcher goes on watching.

    After `os.fork()` the child has none of the parent's threads: watchers that know they
    were inherited (file watches) are started again in the child; any other kind marks
    the Reloader unhealthy with the reason, since its source must be watched from the
    process that uses it (start the Reloader in the worker, after the fork).
    """

    __slots__ = ("__weakref__", "_coalescer", "_name", "_pid", "_signals", "_sources", "_watchers", "broken")

    def __init__(self, sources: Sequence[Source], coalescer: Coalescer, *, name: str) -> None:
        self._sources = tuple(sources)
        self._coalescer = coalescer
        self._name = name
        self._watchers: list[tuple[Source, Watcher]] = []
        self._signals: SignalTrigger | None = None
        self._pid = os.getpid()
        self.broken: str | None = None
        """Why a trigger no longer works (a dead watcher, an unusable one after fork)."""

    def notify(self, trigger: str) -> None:
        """What watchers call: request a reload, and survive whatever it raises."""
        if type(trigger) is not str or not trigger or not trigger.isprintable():
            # A source of the user's may name its trigger anything: a reload must not fail
            # on it (reload() refuses a trigger that is not one printable line).
            trigger = one_line(str(trigger)) or "watch"
        try:
            self._coalescer.request(trigger)
        except BaseException as exc:  # noqa: BLE001 - a watcher thread must never die of a reload
            log.critical(
                "config %r: a reload from %s raised %s on the watcher thread; watching goes on",
                self._name,
                trigger,
                type(exc).__name__,
            )

    def start(self) -> None:
        """Start a watcher for every source that can change (before the first load, so a
        change that lands while it loads is not missed)."""
        started: list[tuple[Source, Watcher]] = []
        try:
            for source in self._sources:
                watcher = source.watch(self.notify)
                if watcher is not None:
                    started.append((source, watcher))
        except BaseException:
            for _, watcher in started:
                watcher.stop()
            raise
        self._watchers = started
        self._pid = os.getpid()
        _forks.watch(self)

    def stop(self) -> None:
        """Stop every watcher (joining its threads) and restore the signal handlers."""
        watchers, self._watchers = self._watchers, []
        for _, watcher in watchers:
            watcher.stop()
        signals, self._signals = self._signals, None
        if signals is not None:
            signals.stop()

    def install_signal(self, signum: int, on_signal: Callable[[str], None]) -> None:
        if self._signals is None:
            self._signals = SignalTrigger(on_signal)
        self._signals.install(signum)

    def dead(self) -> str | None:
        """Why triggers stopped working, checked now (a watcher whose thread died)."""
        if self.broken is not None:
            return self.broken
        for source, watcher in self._watchers:
            alive = getattr(watcher, "alive", None)
            if alive is not None and not alive():
                return f"the watcher of {source.name} stopped"
        return None

    def after_fork(self) -> None:
        """In a child process: restart inherited file watches, report the others."""
        if not self._watchers or os.getpid() == self._pid:
            return
        inherited, self._watchers = self._watchers, []
        self._signals = None  # the worker thread is gone; handlers stay with the parent's pipe
        for source, watcher in inherited:
            if getattr(watcher, "forked", False):
                try:
                    restarted = source.watch(self.notify)
                except Exception as exc:  # noqa: BLE001 - reported below, the child goes on
                    self.broken = f"the watcher of {source.name} could not restart after fork ({type(exc).__name__})"
                    continue
                if restarted is not None:
                    self._watchers.append((source, restarted))
            else:
                self.broken = (
                    f"the watcher of {source.name} was started before fork() and does not run in this "
                    "process: start the Reloader in the worker, after the fork"
                )
        if self.broken:
            log.critical("config %r (pid %d): %s", self._name, os.getpid(), self.broken)
        self._pid = os.getpid()


class _Forks:
    """Calls `after_fork()` on every started `Triggers` in a forked child.

    Registered on the first start, not at import: the file-watch hub registers its own
    reset when it is first imported (by the first file watch), and after-fork hooks run
    in registration order, so ours must come after it.
    """

    def __init__(self) -> None:
        self._triggers: weakref.WeakSet[Triggers] = weakref.WeakSet()
        self._registered = False

    def watch(self, triggers: Triggers) -> None:
        self._triggers.add(triggers)
        if not self._registered:
            self._registered = True
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        for triggers in list(self._triggers):
            try:
                triggers.after_fork()
            except Exception:
                log.exception("could not restart the watchers after fork")


_forks = _Forks()

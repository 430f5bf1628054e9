"""A timer that fires at the earliest override expiry: the workers' overrides and the
fleet's each arm one, and the reload it asks for arms the next."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("selreload")

_LONGEST_WAIT = 86_400.0


class ExpiryTimer:
    """Calls `fire()` at the time `arm()` was last given (epoch seconds), on its own thread.

    The thread runs only while an expiry is armed: a process hosting hundreds of
    instances with no override in force holds no thread for them.
    """

    def __init__(self, fire: Callable[[], None], *, name: str) -> None:
        self._fire = fire
        self._name = name
        self._cond = threading.Condition()
        self._when: float | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    def arm(self, when: float | None) -> None:
        with self._cond:
            if self._stopping:
                return
            self._when = when
            self._cond.notify_all()
            if when is not None and self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping or self._when is None:
                        self._thread = None  # nothing armed: the next arm() starts a thread
                        return
                    left = self._when - time.time()
                    if left <= 0:
                        break
                    # At most a day per wait, then the loop looks again: an expiry written
                    # by hand in the year 9999 is 250 billion seconds away, past what a
                    # lock's timeout can hold (OverflowError killed this thread).
                    self._cond.wait(min(left, _LONGEST_WAIT))
                self._when = None  # the reload's load() arms the next one
            if self._stopping:  # stopped between the wake-up and here: serve no expiry
                return
            try:
                self._fire()
            except Exception:  # the timer must outlive any failed reload
                log.exception("an override expiry reload failed")

    def alive(self) -> bool:
        """False only when the thread died while an expiry was armed."""
        thread = self._thread
        return self._stopping or thread is None or thread.is_alive()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._when = None
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

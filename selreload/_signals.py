"""Turning signals (SIGHUP) into reload requests, on a worker thread, never in the handler."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from ._typing import NotifyFn

log = logging.getLogger("selreload.signal")


class SignalTrigger:
    """Turns signals into `notify("signal")` calls on a worker thread.

    The handler only writes a byte to a pipe: a reload inside a signal handler would run
    in the middle of whatever the main thread was doing, possibly holding the reload lock.
    Signals that arrive while a reload runs fold into one more.
    """

    def __init__(self, notify: NotifyFn) -> None:
        self._notify = notify
        self._previous: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._pipe: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._inert = False

    def __repr__(self) -> str:
        names = ", ".join(signal.Signals(s).name for s in self._previous)
        return f"<SignalTrigger {names or 'no signals'}>"

    def install(self, signum: int) -> None:
        """Handle `signum` from now on; the first call starts the worker thread.

        Raises:
            RuntimeError: not called from the main thread, or after `stop()`.
        """
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "install_signal_handler() must be called from the main thread: Python runs signal handlers only there"
            )
        with self._lock:
            if self._inert:
                raise RuntimeError("this signal trigger was stopped")
            if self._pipe is None:
                read, write = os.pipe()
                os.set_blocking(write, False)
                self._pipe = (read, write)
                self._thread = threading.Thread(target=self._run, args=(read,), name="selreload-signal", daemon=True)
                self._thread.start()
            previous = signal.signal(signum, self._handle)
            self._previous.setdefault(signum, previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        pipe = self._pipe
        if self._inert or pipe is None:
            return
        # Full pipe: wake-ups are already pending, and one is as good as many.
        with contextlib.suppress(BlockingIOError):
            os.write(pipe[1], b"s")

    def _run(self, read: int) -> None:
        try:
            while True:
                data = os.read(read, 512)
                if not data or b"q" in data or self._inert:
                    return
                try:
                    self._notify("signal")
                except Exception:  # the worker must survive any failure of one reload
                    log.exception("reload on signal failed")
        finally:
            os.close(read)

    def stop(self) -> None:
        """Restore the previous handlers and join the worker (idempotent)."""
        with self._lock:
            if self._inert:
                return
            self._inert = True
            restored = threading.current_thread() is threading.main_thread()
            if restored:
                for signum, previous in self._previous.items():
                    signal.signal(signum, previous)
            elif self._previous:
                log.warning("stop() outside the main thread cannot restore the signal handlers; they now do nothing")
            self._previous.clear()
            pipe, thread = self._pipe, self._thread
        if pipe is None or thread is None:
            return
        write = pipe[1]
        # A full pipe has bytes to read: the worker reads them and sees `_inert`.
        with contextlib.suppress(BlockingIOError):
            os.write(write, b"q")
        if thread is not threading.current_thread():
            thread.join()
        # A handler still installed may write to this fd: close it only when none can
        # (a reused fd number would receive its bytes).
        if restored:
            os.close(write)

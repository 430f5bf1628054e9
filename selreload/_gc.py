"""No full garbage collection inside a reload: automatic collection waits until it ends."""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_inside = 0  # reloads running now, across every Reloader
_restore = False  # whether automatic collection was on when the first of them began


class _Deferred:
    """Hold automatic collection off for the block; the state the first of several
    overlapping blocks found is restored when the last one ends.

    Measured at 10,000 leaves: a reload allocates ~30,000 containers, and a full collection
    landed inside one reload in ~15 (23-40 ms, doubling that reload). Held off, the cycles a
    reload leaves are collected by the next automatic collection after it; nothing is lost,
    and a user's `gc.disable()` stays disabled. (A class, not @contextmanager: ~1 us less
    per reload.)
    """

    __slots__ = ()

    def __enter__(self) -> None:
        global _inside, _restore
        with _lock:
            if _inside == 0:
                _restore = gc.isenabled()
                gc.disable()
            _inside += 1

    def __exit__(self, *_exc: object) -> None:
        global _inside
        with _lock:
            _inside -= 1
            if _inside == 0 and _restore:
                gc.enable()


_DEFERRED = _Deferred()


def deferred() -> _Deferred:
    """`with deferred():` holds automatic collection off for the block (see `_Deferred`)."""
    return _DEFERRED

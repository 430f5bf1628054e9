"""What readers hold: the pin of one snapshot per block, and `current` before start()."""

from __future__ import annotations

import contextvars
import typing
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ._errors import StateError
from ._snapshot import Snapshot

C = TypeVar("C")


class _PinBase:
    """The context manager `pin()` returns: `with reloader.pin() as cfg:`.

    Each Reloader makes its own subclass (`pin_class`), whose methods reach the
    ContextVar's bound `set`/`reset` and the pipeline through closure cells: an instance
    is one slot (the token), made without an `__init__`. Not `Generic` at run time:
    `typing.Generic` in the MRO added ~30 ns to every instantiation. Measured against a
    bare `cv.set()`/`cv.reset()` (benchmarks/bench_core.py, interleaved minimums), the
    former class (three slots set in `__init__`, a `get()` before the `set()`, Generic)
    took 3.6-4.2x; this one 2.6-3.0x.
    """

    __slots__ = ("_token",)

    def __class_getitem__(cls, item: object) -> type[_PinBase]:
        return cls  # `Pin[C]` in annotations evaluated at run time


if TYPE_CHECKING:

    class Pin(_PinBase, Generic[C]):
        def __enter__(self) -> C: ...
        def __exit__(self, exc_type: object, exc: object, tb: object) -> None: ...

else:
    Pin = _PinBase


class _Live(Protocol[C]):
    @property
    def snapshot(self) -> Snapshot[C] | None: ...


def pin_class(var: contextvars.ContextVar[Snapshot[C] | None], owner: _Live[C]) -> type[Pin[C]]:
    """The `Pin` subclass of one Reloader: pins `owner.snapshot` (the live one) in `var`."""
    set_, reset, get = var.set, var.reset, var.get

    class _Pin(_PinBase):
        __slots__ = ()

        def __enter__(self) -> C:
            # The var holds snapshots only and defaults to None (unset outside a pin):
            # `get()` first, then `set()` only in the usual, outermost pin. Setting first
            # and reading `Token.old_value` was ~20 ns slower (a generic attribute load on
            # a C type), and a nested pin paid a reset.
            outer = get()
            if outer is None:
                snapshot = owner.snapshot
                if snapshot is None:
                    raise StateError("no config is live yet: call start() first")
                self._token = set_(snapshot)
                return snapshot.config
            # A nested pin keeps the outer snapshot (a reload may have happened since).
            return outer.config

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            # An unset slot is a nested pin, which set nothing: AttributeError, not a branch.
            try:  # noqa: SIM105 - suppress() would be one more context manager per exit
                reset(self._token)
            except AttributeError:
                pass

    _Pin.__qualname__ = _Pin.__name__ = "Pin"
    return typing.cast("type[Pin[C]]", _Pin)


class NotStarted:
    """What `current` holds before start(): any use says what to do.

    A sentinel instead of ``Reloader.__getattr__``: a class with `__getattr__` loses
    CPython's specialised attribute loads, which made every `current` read 3.5x slower.
    """

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise StateError(f"reloader {self._name!r} has no config yet: call start() first")

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<reloader {self._name!r}: no config yet, call start()>"

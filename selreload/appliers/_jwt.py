"""`JwtTtl`: the lifetime a token issuer gives the tokens it issues next."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from .._change import UNSET, Change
from .._snapshot import Snapshot
from .._values import format_duration
from ._common import Base, paths_of


class JwtTtl(Base):
    """Holds the token lifetime a JWT issuer reads as `holder.ttl` when it issues a token.

    Register it at a `timedelta` field (`reloader.on("auth.jwt.ttl", JwtTtl())`). A change
    affects tokens issued afterwards only: tokens already issued keep their expiry.

    Args:
        default: the lifetime until the config is applied.
        name: how metrics, spans and errors name this applier.
    """

    ttl: datetime.timedelta
    """The current lifetime: a plain attribute read, replaced by one assignment."""

    def __init__(self, default: datetime.timedelta = datetime.timedelta(hours=24), *, name: str = "JwtTtl") -> None:
        super().__init__(name)
        self.ttl = _check(default, "default")

    def __repr__(self) -> str:
        return f"<JwtTtl {self.name!r} ttl={format_duration(self.ttl)}>"

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Take the new lifetime; raises `ValueError` on anything but a positive timedelta."""
        if len(changes) != 1:
            paths = ", ".join(paths_of(changes))
            raise ValueError(f"{self.name}: expected one duration field, got {len(changes)} ({paths})")
        (change,) = changes
        ttl = _check(change.new, change.path)
        with self._lock:
            self._undo.push(paths_of(changes), self.ttl)
            self.ttl = ttl

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Restore the lifetime that was current before `apply`."""
        with self._lock:
            previous = self._undo.pop(paths_of(changes))
            if previous is not None:
                self.ttl = previous
            elif len(changes) == 1 and changes[0].old is not UNSET:
                self.ttl = _check(changes[0].old, changes[0].path)


def _check(value: Any, path: str) -> datetime.timedelta:
    if not isinstance(value, datetime.timedelta):
        raise ValueError(f"{path}: a token lifetime is a duration, got {value!r}")
    if value <= datetime.timedelta(0):
        raise ValueError(f"{path}: a token lifetime must be positive, got {format_duration(value)}")
    return value

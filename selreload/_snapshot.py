"""`Snapshot`: one immutable, versioned config as it went live."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

import attrs

C = TypeVar("C")


class Origins(Mapping[str, str]):
    """`{dotted path: origin}` of every leaf, computed on first use.

    Positions come from a slower round-trip parse, so a snapshot only pays for them when
    someone asks (an error to place, `explain`, the admin app).
    """

    __slots__ = ("_compute", "_data")

    def __init__(self, compute: Callable[[], Mapping[str, str]]) -> None:
        self._compute: Callable[[], Mapping[str, str]] | None = compute
        self._data: Mapping[str, str] | None = None

    def _get(self) -> Mapping[str, str]:
        if self._data is None:
            compute = self._compute
            self._data = compute() if compute is not None else {}
            self._compute = None
        return self._data

    def __getitem__(self, key: str) -> str:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        state = "computed" if self._data is not None else "lazy"
        return f"<Origins {state}>"


@attrs.frozen(eq=False, repr=False, weakref_slot=True)
class Snapshot(Generic[C]):
    """An immutable config plus what identifies it.

    Attributes:
        config: the config instance (a frozen `@sr.config` class).
        version: 1 for the config loaded at start, +1 for every committed reload.
        digest: sha256 of the effective leaf values (identical configs, identical digests).
        loaded_at: when it was committed (UTC).
        origins: `{dotted path: origin}` of every leaf, computed lazily.
    """

    config: C
    version: int
    digest: str
    loaded_at: datetime.datetime
    origins: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"Snapshot(version={self.version}, digest={self.digest[:12]!r})"

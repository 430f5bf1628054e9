"""Policies, the UNSET marker and `Change`: the unit every stage passes along."""

from __future__ import annotations

import datetime
import enum
from typing import Any, Final

import attrs

MASK: Final = "***"


class Policy(enum.Enum):
    """Whether a leaf may change while the service runs."""

    HOT = "hot"
    RESTART_ONLY = "restart_only"


class _Unset(enum.Enum):
    # An enum member is a singleton that survives pickling and copy.
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset.UNSET
"""The `old` value of a change an applier sees at start-up: there was no previous value."""


def format_duration(td: datetime.timedelta) -> str:
    """The inverse of `parse_duration` for people: `1h30m`, `15m`, `1.5s`."""
    total = td.total_seconds()
    if total < 0 or total != int(total):
        return f"{total:g}s"
    seconds = int(total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def render(value: Any, *, secret: bool) -> str:
    """`repr` of a value for people, masked when it is a secret."""
    if secret and value is not UNSET:
        return MASK
    if isinstance(value, datetime.timedelta):
        return format_duration(value)
    if isinstance(value, enum.Enum) and value is not UNSET:
        return repr(value.value)
    return repr(value)


@attrs.frozen(repr=False)
class Change:
    """One leaf that differs between two configs.

    Attributes:
        path: dotted path of the leaf (`logging.level`, `feature_flags.new_checkout`).
        old: the live value (`UNSET` on start-up, or when a mapping key is new).
        new: the value going live (`UNSET` when a mapping key was removed).
        policy: the leaf's resolved policy.
        secret: the value is masked wherever selreload renders it.
    """

    path: str
    old: Any
    new: Any
    policy: Policy = Policy.HOT
    secret: bool = False

    def inverted(self) -> Change:
        """The change that undoes this one (old and new swapped)."""
        return attrs.evolve(self, old=self.new, new=self.old)

    def __repr__(self) -> str:
        old = render(self.old, secret=self.secret)
        new = render(self.new, secret=self.secret)
        return f"Change({self.path!r}, {old} -> {new}, {self.policy.value})"

    __str__ = __repr__

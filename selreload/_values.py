"""Leaf value types: env text, read-only containers, durations, UNSET, plain data."""

from __future__ import annotations

import datetime
import enum
import pathlib
import re
from collections.abc import Mapping
from typing import Any, Final, NoReturn

import attrs


class _Unset(enum.Enum):
    # An enum member is a singleton that survives pickling and copy.
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset.UNSET
"""The `old` value of a change an applier sees at start-up: there was no previous value."""


class EnvText(str):
    """A value read as text (an environment variable): parsed by the field's type.

    Only text from env is parsed (`"true"` for a bool, `"8080"` for an int, JSON for a
    list or mapping); the same string from YAML is a type error.
    """

    __slots__ = ()


def _read_only(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(
        f"config values are immutable: change the config source and reload (tried to modify a {type(self).__name__})"
    )


class FrozenDict(dict[Any, Any]):
    """A read-only `dict` (config mappings are shared by every reader of a snapshot)."""

    __slots__ = ()
    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


class FrozenList(list[Any]):
    """A read-only `list`: compares equal to a list with the same items."""

    __slots__ = ()
    __setitem__ = __delitem__ = append = extend = insert = remove = pop = clear = _read_only
    sort = reverse = __iadd__ = __imul__ = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))


def kind(value: Any) -> str:
    """The kind of a raw value as an error message names it: `text`, `mapping`, `list`, ..."""
    if isinstance(value, EnvText):
        return "text"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    if value is None:
        return "null"
    return type(value).__name__


# --- durations ----------------------------------------------------------------------------

_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?P<u>ms|us|µs|s|m|h|d|w)")
_UNIT_SECONDS: Final = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> datetime.timedelta | None:
    """`"15m"`, `"24h"`, `"1h30m"`, `"250ms"`, `"90"` (seconds) -> timedelta; None if not one."""
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.timedelta(seconds=float(text))
    except ValueError:
        pass
    pos, seconds = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        seconds += float(m["n"]) * _UNIT_SECONDS[m["u"]]
        pos = m.end()
    return datetime.timedelta(seconds=seconds) if pos == len(text) else None


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


# --- back to plain data -------------------------------------------------------------------


def to_plain(value: Any) -> Any:
    """A config value as JSON-ready data, unmasked: durations as `"1h30m"`, enums by value,
    paths and dates as text, sets sorted. Anything people or files see goes through
    `_mask.masked_plain` (a whole config) or `_mask.plain` (one leaf) instead."""
    if attrs.has(type(value)):
        return {a.name: to_plain(getattr(value, a.name)) for a in attrs.fields(type(value))}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [to_plain(v) for v in ordered(value)]
    return scalar_to_plain(value)


def ordered(items: Any) -> Any:
    """The items of a list as they are, of a set sorted (so equal sets render equally)."""
    return sorted(items, key=repr) if isinstance(items, frozenset | set) else items


def scalar_to_plain(value: Any) -> Any:
    """A value that is not a container as JSON-ready data."""
    if isinstance(value, datetime.timedelta):
        return format_duration(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return value

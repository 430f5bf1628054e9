"""Arguments checked where they enter: a wrong one is a TypeError or ValueError naming
it, raised by the call that passed it, never an AttributeError at the first reload.

Measured before these checks: `Reloader(audit="audit.jsonl")` and `sources=["c.yaml"]`
failed at `start()` with AttributeError; `YamlFile(max_bytes=float("nan"))` reported
every file as empty and `max_bytes="4M"` as "failed unexpectedly"; `required="no"` was
true; `subscribe(1)` logged a traceback at every reload; an actor or trigger holding a
newline forged a second line in the log. Each check costs a few hundred nanoseconds, once.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from ._values import one_line

T = TypeVar("T")

LONGEST_SECONDS = 100 * 365 * 86400.0
"""The longest duration an argument may give: as long as a config duration may be."""


def got(value: object, *, secret: bool = False) -> str:
    """The value as an error quotes it: its repr cut to 80 characters, or only its type."""
    if secret:
        return f"a value of type {type(value).__name__}"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a failing __repr__ must not replace the error quoting it
        text = f"<{type(value).__name__}>"
    text = one_line(text)
    return text if len(text) <= 80 else f"{text[:77]}..."


def flag(where: str, name: str, value: object) -> bool:
    """True or False; 0, 1 and "no" are refused: `"no"` would have been true."""
    if not isinstance(value, bool):
        raise TypeError(f"{where}: {name} must be True or False, got {got(value)}")
    return value


def count(where: str, name: str, value: object, *, minimum: int = 0, maximum: int | None = None) -> int:
    """An int (not a bool) of at least `minimum` (and at most `maximum`)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where}: {name} must be an int, got {got(value)}")
    if value < minimum:
        raise ValueError(f"{where}: {name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{where}: {name} must be at most {maximum:,}, got {got(value)}")
    return value


def seconds(where: str, name: str, value: object, *, positive: bool = False) -> float:
    """A finite number of seconds, at least 0 (above 0 when `positive`), at most 100 years."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where}: {name} must be a number of seconds, got {got(value)}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0) or value > LONGEST_SECONDS:
        bound = "above 0" if positive else "at least 0"
        raise ValueError(
            f"{where}: {name} must be a finite number of seconds {bound} (at most 100 years), got {value!r}"
        )
    return float(value)


def positive_count(where: str, name: str, value: object) -> int:
    """A count of at least 1: a size limit, a lease's seconds."""
    return count(where, name, value, minimum=1)


def positive_seconds(where: str, name: str, value: object) -> float:
    """A timeout or an interval: finite seconds above 0."""
    return seconds(where, name, value, positive=True)


def text(where: str, name: str, value: object, *, empty: bool = False) -> str:
    """A str of printable characters: a newline or an escape code in a name, trigger or
    actor would forge a line in the log, or colour the operator's terminal."""
    if not isinstance(value, str):
        raise TypeError(f"{where}: {name} must be a str, got {got(value)}")
    if not value and not empty:
        raise ValueError(f"{where}: {name} must not be empty")
    if not value.isprintable():
        raise ValueError(f"{where}: {name} must be printable text (no newline or control character), got {got(value)}")
    return value


def path(where: str, name: str, value: object) -> str:
    """A str or os.PathLike naming a file: not empty (that would be the working
    directory), no NUL byte (`open()` raises ValueError on one at every load)."""
    try:
        fs = os.fspath(value)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"{where}: {name} must be a path (a str or os.PathLike), got {got(value)}") from None
    if not isinstance(fs, str):
        raise TypeError(f"{where}: {name} must be a path as text, not bytes, got {got(value)}")
    if not fs:
        raise ValueError(f"{where}: {name} must not be empty")
    if "\x00" in fs:
        raise ValueError(f"{where}: {name} must not hold a NUL character, got {got(fs)}")
    return fs


def one_of(where: str, name: str, value: object, options: Iterable[object]) -> Any:
    """One of `options` (compared with ==, a bool never standing for 0 or 1)."""
    listed = tuple(options)
    if not any(value == o and type(value) is type(o) for o in listed):
        raise ValueError(f"{where}: {name} must be one of {', '.join(map(repr, listed))}, got {got(value)}")
    return value


def watch_mode(where: str, value: object) -> str | bool:
    """A source's `watch=`: "auto", "inotify" or "poll", True for "auto", or False."""
    if value is True:
        return "auto"
    if value is False:
        return False
    return one_of(where, "watch", value, ("auto", "inotify", "poll", True, False))  # type: ignore[no-any-return]


def having(where: str, name: str, value: T, methods: tuple[str, ...], hint: str) -> T:
    """An object with these callable attributes (a protocol checked by its methods)."""
    missing = [m for m in methods if not callable(getattr(value, m, None))]
    if missing:
        raise TypeError(f"{where}: {name} must be {hint}, got {got(value)} (it has no {', '.join(missing)}())")
    return value


def callable_with(where: str, name: str, value: T, args: tuple[str, ...]) -> T:
    """A callable that can be called with these positional arguments, when its signature
    says so (a callable without one, such as some builtins, is taken on trust)."""
    if not callable(value):
        raise TypeError(f"{where}: {name} must be callable as {name}({', '.join(args)}), got {got(value)}")
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return value
    try:
        signature.bind(*args)
    except TypeError as exc:
        raise TypeError(f"{where}: {name} {got(value)} cannot be called as {name}({', '.join(args)}): {exc}") from None
    return value


def environ(where: str, value: object) -> Mapping[str, str] | None:
    """`environ=`: None (os.environ, read at every load) or a mapping of names to text."""
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"{where}: environ must be a mapping of variable names to text, got {got(value)}")
    return value


def every(where: str, check: Callable[[str, str, Any], object], **values: object) -> None:
    """`check(where, name, value)` for each named value that is not None."""
    for name, value in values.items():
        if value is not None:
            check(where, name, value)


def each(where: str, name: str, values: object, check: Callable[[str, object], T]) -> tuple[T, ...]:
    """Every item of an iterable (not a str or a mapping) checked as `name[i]`."""
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise TypeError(f"{where}: {name} must be a list, got {got(values)}")
    return tuple(check(f"{name}[{i}]", v) for i, v in enumerate(values))

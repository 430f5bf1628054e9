"""`StructlogLevel` and `LoguruLevel`: live log levels for structlog and loguru users.

Both libraries are imported on first apply, not at import: `selreload.appliers` works
without them installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from .._change import UNSET, Change
from .._snapshot import Snapshot
from ._common import Base, paths_of
from ._logging import parse_level


def _one(changes: Sequence[Change], name: str) -> Change:
    if len(changes) != 1:
        raise ValueError(f"{name}: expected one level field, got {len(changes)} ({', '.join(paths_of(changes))})")
    return changes[0]


def _module(name: str, extra: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ValueError(f"{name} is not installed (pip install 'selreload[{extra}]')") from None


class StructlogLevel(Base):
    """Sets the level of structlog's filtering bound logger (`make_filtering_bound_logger`).

    Register it at a level field: `reloader.on("logging.level", StructlogLevel())`. Each
    apply calls `structlog.configure(wrapper_class=make_filtering_bound_logger(level))`
    and nothing else of the configuration; rollback puts back the exact `wrapper_class`
    that was configured before. Loggers from `structlog.get_logger()` pick the new level up
    at their next call, unless `cache_logger_on_first_use=True` froze them (then a level
    change reaches only loggers not used yet: leave caching off to change levels live).
    Levels are names in any case (`debug`, `INFO`) or ints, as for `LogLevel`.

    For structlog on top of stdlib logging (`structlog.stdlib.BoundLogger`), the level is
    stdlib's: use `LogLevel`.

    Args:
        name: how metrics, spans and errors name this applier.
    """

    def __init__(self, *, name: str = "StructlogLevel") -> None:
        super().__init__(name)

    def __repr__(self) -> str:
        return f"<StructlogLevel {self.name!r}>"

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Configure the filtering bound logger at the new level; raises `ValueError`
        (changing nothing) on a bad level."""
        change = _one(changes, self.name)
        structlog = _module("structlog", "structlog")
        level = parse_level(change.new, change.path)
        wrapper = structlog.make_filtering_bound_logger(level)
        with self._lock:
            self._undo.push(paths_of(changes), structlog.get_config()["wrapper_class"])
            structlog.configure(wrapper_class=wrapper)

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Configure back the `wrapper_class` that was live before `apply`."""
        structlog = _module("structlog", "structlog")
        with self._lock:
            previous = self._undo.pop(paths_of(changes))
            if previous is None:
                change = _one(changes, self.name)
                if change.old is UNSET:
                    return
                previous = structlog.make_filtering_bound_logger(parse_level(change.old, change.path))
            structlog.configure(wrapper_class=previous)


class LoguruLevel(Base):
    """A live minimum level for loguru handlers, read through the handler's `filter`.

    loguru fixes a handler's level when it is added, so the level that changes lives in
    this object: add handlers with `logger.add(sink, level=0, filter=levels.filter)` and
    register it at a level field (`reloader.on("logging.level", levels)`). A record passes
    when its level number is at least the configured one. Names are loguru's (`TRACE`,
    `DEBUG`, `INFO`, `SUCCESS`, `WARNING`, `ERROR`, `CRITICAL`, any case, and custom levels
    added with `logger.level(...)`) or ints. Changing it is one assignment; rollback puts
    the old number back.

    Args:
        default: the level until the config is applied.
        name: how metrics, spans and errors name this applier.
    """

    no: int
    """The minimum level number a record needs to pass `filter`."""

    def __init__(self, default: str | int = "DEBUG", *, name: str = "LoguruLevel") -> None:
        super().__init__(name)
        self.no = self._parse(default, "default") if isinstance(default, str) else parse_level(default, "default")

    def __repr__(self) -> str:
        return f"<LoguruLevel {self.name!r} no={self.no}>"

    def filter(self, record: Any) -> bool:
        """loguru's `filter=`: whether the record's level reaches the live minimum."""
        return bool(record["level"].no >= self.no)

    @staticmethod
    def _parse(value: Any, path: str) -> int:
        if isinstance(value, str):
            loguru = _module("loguru", "loguru")
            for candidate in (value.strip(), value.strip().upper()):
                try:
                    return int(loguru.logger.level(candidate).no)
                except ValueError:
                    continue
            raise ValueError(
                f"{path}: unknown loguru level {value!r}; expected TRACE, DEBUG, INFO, SUCCESS, "
                "WARNING, ERROR, CRITICAL or a custom level"
            )
        return parse_level(value, path)

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Take the new minimum; raises `ValueError` (changing nothing) on an unknown level."""
        change = _one(changes, self.name)
        no = self._parse(change.new, change.path)
        with self._lock:
            self._undo.push(paths_of(changes), self.no)
            self.no = no

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Put back the minimum that was live before `apply`."""
        with self._lock:
            previous = self._undo.pop(paths_of(changes))
            if previous is None:
                change = _one(changes, self.name)
                if change.old is UNSET:
                    return
                previous = self._parse(change.old, change.path)
            self.no = previous

"""`LogLevel`: stdlib logger levels, from one level field or a mapping of logger names."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .._change import UNSET, Change
from .._snapshot import Snapshot
from ._common import Base, mapping_key, paths_of

_NAMES = "debug, info, warning, error, critical"


def parse_level(value: Any, path: str) -> int:
    """A level from a name (any case: `debug`, `INFO`, `warning`...) or a non-negative int.

    Raises:
        ValueError: an unknown name, a negative number, or another type.
    """
    if isinstance(value, bool):
        raise ValueError(f"{path}: a log level is a name ({_NAMES}) or an int, got bool {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{path}: a log level cannot be negative, got {value}")
        return value
    if isinstance(value, str):
        level = logging.getLevelNamesMapping().get(value.strip().upper())
        if level is None:
            raise ValueError(f"{path}: unknown log level {value!r}; expected one of {_NAMES}")
        return level
    raise ValueError(f"{path}: a log level is a name ({_NAMES}) or an int, got {type(value).__name__}")


class LogLevel(Base):
    """Sets the level of stdlib loggers.

    Register it at a level field (`reloader.on("logging.level", LogLevel())` sets the root
    logger, `LogLevel("myapp.db")` that logger), or at a mapping of logger names to levels,
    like Spring's `logging.level.*` (`reloader.on("logging.levels", LogLevel())` with
    `levels: dict[str, str]`): each key is a logger name, `root` is the root logger, and
    a key removed from the mapping gives its logger back the level it had before selreload
    first set it. The two forms are told apart by the config itself: a change under a
    mapping field is a per-logger one.

    Levels are names in any case (`debug`, `INFO`, ...) or ints. Rollback restores the exact
    level each logger had when `apply` ran, `NOTSET` included.

    Args:
        logger: the logger a plain level field sets (`""`: root).
        name: how metrics, spans and errors name this applier.
    """

    def __init__(self, logger: str = "", *, name: str | None = None) -> None:
        super().__init__(name or f"LogLevel({logger or 'root'})")
        self.logger = logger
        # The level each logger had before this applier first touched it.
        self._baseline: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<LogLevel {self.name!r} logger={self.logger or 'root'!r}>"

    def _targets(self, changes: Sequence[Change], snapshot: Snapshot[Any], use_old: bool) -> dict[str, int | None]:
        """`{logger name: level}` (`None`: its baseline), every value validated first so a
        bad one changes nothing."""
        targets: dict[str, int | None] = {}
        plain = [c.path for c in changes if mapping_key(c.path, snapshot.config) is None]
        if len(plain) > 1:
            raise ValueError(
                f"{self.name}: got {len(plain)} level fields ({', '.join(plain)}); register it at one level "
                "field or at a mapping of logger names to levels"
            )
        for change in changes:
            key = mapping_key(change.path, snapshot.config)
            logger = self.logger if key is None else ("" if key == "root" else key)
            value = change.old if use_old else change.new
            targets[logger] = None if value is UNSET else parse_level(value, change.path)
        return targets

    def _set(self, targets: dict[str, int | None]) -> None:
        for logger, level in targets.items():
            log = logging.getLogger(logger or None)
            self._baseline.setdefault(logger, log.level)
            log.setLevel(self._baseline[logger] if level is None else level)

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Set each logger's level; raises `ValueError` (changing nothing) on a bad level."""
        with self._lock:
            targets = self._targets(changes, snapshot, use_old=False)
            saved = {logger: logging.getLogger(logger or None).level for logger in targets}
            self._set(targets)
            self._undo.push(paths_of(changes), saved)

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Give each logger back the level it had when `apply` ran."""
        with self._lock:
            saved = self._undo.pop(paths_of(changes))
            if saved is None:  # never applied here: undo by the changes' old values
                self._set(self._targets(changes, snapshot, use_old=True))
                return
            for logger, level in saved.items():
                logging.getLogger(logger or None).setLevel(level)

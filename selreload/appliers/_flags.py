"""`FeatureFlags`: a flag store the application reads without a lock."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any

from .._change import UNSET, Change
from .._snapshot import Snapshot
from ._common import Base, flag_of, paths_of, updated


class FeatureFlags(Base):
    """Boolean feature flags the application reads: `flags.enabled("new_checkout")`.

    Register it at a `dict[str, bool]` field (`reloader.on("feature_flags", flags)`): each
    key is a flag, applied per key; a key removed from the config removes the flag. It can
    also take plain bool fields (`reloader.on("api.v2_enabled", flags)`): the flag's name is
    then the field's path.

    Every apply builds a new immutable mapping and swaps it in with one assignment, so
    readers never lock and never see half of a reload; rollback swaps the previous one back.

    Args:
        name: how metrics, spans and errors name this applier.
    """

    def __init__(self, *, name: str = "FeatureFlags") -> None:
        super().__init__(name)
        self._flags: Mapping[str, bool] = types.MappingProxyType({})

    def enabled(self, flag: str, default: bool = False) -> bool:
        """Whether `flag` is on; `default` when the config does not name it."""
        return self._flags.get(flag, default)

    def snapshot(self) -> Mapping[str, bool]:
        """Every flag, as an immutable mapping that later reloads do not change."""
        return self._flags

    def __repr__(self) -> str:
        on = sorted(k for k, v in self._flags.items() if v)
        return f"<FeatureFlags {self.name!r} {len(self._flags)} flags, on: {on}>"

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Set, clear or remove each flag; raises `ValueError` (changing nothing) on a
        value that is not a bool."""
        updates: dict[str, Any] = {}
        for change in changes:
            flag = flag_of(change, snapshot.config)
            if change.new is UNSET or isinstance(change.new, bool):
                updates[flag] = change.new
            else:
                raise ValueError(f"{change.path}: a feature flag is true or false, got {change.new!r}")
        with self._lock:
            previous = self._flags
            # The commit point for readers: one reference assignment.
            self._flags = updated(previous, updates)
            self._undo.push(paths_of(changes), previous)

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Swap back the exact set of flags that was live before `apply`."""
        with self._lock:
            previous = self._undo.pop(paths_of(changes))
            if previous is not None:
                self._flags = previous
                return
            # Never applied here: undo by the changes' old values.
            flags = dict(self._flags)
            for change in changes:
                flag = flag_of(change, snapshot.config)
                if change.old is UNSET:
                    flags.pop(flag, None)
                else:
                    flags[flag] = bool(change.old)
            self._flags = types.MappingProxyType(flags)

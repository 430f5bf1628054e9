"""What the built-in appliers share: finding mapping keys, reading the snapshot, undo."""

from __future__ import annotations

import collections
import threading
import types
from collections.abc import Mapping, Sequence
from typing import Any, Final, Generic, TypeVar

from .._backend import is_node
from .._change import UNSET, Change

T = TypeVar("T")

MISSING: Final = object()


def mapping_key(path: str, config: Any) -> str | None:
    """The key of a per-key change (`feature_flags.new_checkout` -> `new_checkout`), or
    `None` when `path` is a plain leaf.

    Found by walking the config rather than splitting on dots, because a key may hold
    dots itself (`logging.levels.myapp.db` is key `myapp.db` of `logging.levels`).
    """
    node = config
    parts = path.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, Mapping):
            return ".".join(parts[i:])
        if not is_node(type(node)):
            return None
        node = getattr(node, part, MISSING)
        if node is MISSING:
            return None
    return None


def lookup(config: Any, path: str) -> Any:
    """The value at a dotted attribute path of a config, or `MISSING`."""
    node = config
    for part in path.split("."):
        if not is_node(type(node)):
            return MISSING
        node = getattr(node, part, MISSING)
        if node is MISSING:
            return MISSING
    return node


def section_values(
    changes: Sequence[Change], snapshot: Any, tracked: Mapping[str, Any], *, name: str, use_old: bool
) -> tuple[str, dict[str, Any]]:
    """`(section path, {field: value})` for an applier registered at a config section with
    the fields named in `tracked` (`Sampler`: `type` and `ratio`), from changes to some of them.

    A changed field takes its new (or old) value, `UNSET` as `None`; an unchanged one is
    read from the snapshot, else its `tracked` value (as last applied).

    Raises:
        ValueError: a change to another field, or fields of several sections.
    """
    values: dict[str, Any] = {}
    prefixes = set()
    for change in changes:
        prefix, _, leaf = change.path.rpartition(".")
        if leaf not in tracked:
            wanted = " and ".join(f"`{f}`" for f in tracked)
            raise ValueError(
                f"{change.path}: {name} takes the fields {wanted}; register it at the config section that holds them"
            )
        prefixes.add(prefix)
        value = change.old if use_old else change.new
        values[leaf] = None if value is UNSET else value
    if len(prefixes) > 1:
        raise ValueError(f"{name}: got fields of several sections: {', '.join(sorted(prefixes))}")
    prefix = prefixes.pop() if prefixes else ""
    for leaf, last in tracked.items():
        if leaf not in values:
            found = lookup(snapshot.config, f"{prefix}.{leaf}" if prefix else leaf)
            values[leaf] = last if found is MISSING else found
    return prefix, values


def flag_of(change: Change, config: Any) -> str:
    """The flag a change sets: its mapping key, or its path for a plain field."""
    key = mapping_key(change.path, config)
    return change.path if key is None else key


def updated(previous: Mapping[str, Any], updates: Mapping[str, Any]) -> types.MappingProxyType[str, Any]:
    """A read-only copy of `previous` with `updates` set, keys whose value is `UNSET`
    removed: the new map a flag store swaps in with one reference assignment."""
    flags = dict(previous)
    for key, value in updates.items():
        if value is UNSET:
            flags.pop(key, None)
        else:
            flags[key] = value
    return types.MappingProxyType(flags)


def paths_of(changes: Sequence[Change]) -> tuple[str, ...]:
    return tuple(c.path for c in changes)


class Undo(Generic[T]):
    """The states saved by `apply`, newest last, for `rollback` to restore exactly.

    A transaction rolls back only the appliers it just applied, newest first, so the
    state to restore is the newest one saved for the same paths. Bounded: an applied
    reload that commits is never rolled back, so old entries only need to not leak.
    """

    __slots__ = ("_stack",)

    def __init__(self, depth: int = 16) -> None:
        self._stack: collections.deque[tuple[tuple[str, ...], T]] = collections.deque(maxlen=depth)

    def push(self, paths: tuple[str, ...], state: T) -> None:
        self._stack.append((paths, state))

    def pop(self, paths: tuple[str, ...]) -> T | None:
        """The state saved by the newest `apply` of these paths, or `None` if there is none."""
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == paths:
                state = self._stack[i][1]
                del self._stack[i]
                return state
        return None


class Base:
    """Common parts: a name, a lock serializing apply/rollback (one applier object may be
    registered with several reloaders), and the undo stack."""

    name: str

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._undo: Undo[Any] = Undo()

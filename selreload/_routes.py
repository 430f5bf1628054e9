"""Which applier gets which change: registrations and their matching, apart from the Reloader.

A route is an applier registered at a path or glob; it covers every change at or under
what it names. Matching is done once per reload for all changes (`batches`), through two
indexes, so routing costs O(changes x depth), not O(changes x appliers):

- exact patterns: each ancestor of a changed path (its dotted prefixes) is looked up in
  a dict, for the pattern lengths in use only;
- globs, by their literal prefix (what comes before the first `*`, `?` or `[`): a glob
  can only match a path that starts with it, so for each prefix length in use the path's
  first characters are looked up in a dict, and only the globs found there are matched.
  Globs that start with a wildcard (`*.level`) have the empty prefix: every path tries
  them, one regex match each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from . import _paths
from ._change import Change


@attrs.frozen(eq=False)
class Route:
    """An applier and the path (or glob) it was registered for."""

    pattern: str
    applier: Any
    name: str

    def covers(self, path: str) -> bool:
        return _paths.matches(self.pattern, path)


Batch = tuple[Route, tuple[Change, ...]]
"""One applier's share of a reload: its route and the changes it covers, in change order."""


class Routes:
    """The registered appliers, in registration order (which is the order they run in)."""

    __slots__ = ("_cache", "_exact", "_exact_lengths", "_globs", "_lengths", "_names", "_routes")

    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._names: list[str] = []
        self._exact: dict[str, list[int]] = {}
        self._exact_lengths: list[int] = []  # the lengths of the keys of `_exact`, shortest first
        # literal prefix length -> literal prefix -> [(route index, its matcher)]
        self._globs: dict[int, dict[str, list[tuple[int, Callable[[str], object] | None]]]] = {}
        self._lengths: list[int] = []  # the keys of `_globs`, shortest first
        # path -> (covering route indexes, their names): a config changes the same leaves
        # again and again. Emptied by `add`; each entry is one tuple, written whole.
        self._cache: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {}

    def add(self, pattern: str, applier: Any, name: str) -> Route:
        route = Route(pattern, applier, name)
        self._cache = {}
        index = len(self._routes)
        self._routes.append(route)
        self._names.append(name)
        if _paths.is_glob(pattern):
            prefix = _literal_prefix(pattern)
            # `prefix*` matches every path that starts with `prefix` (`*` crosses dots):
            # finding it by its prefix is the whole match.
            matcher = None if pattern == prefix + "*" else _paths.matcher(pattern)
            self._globs.setdefault(len(prefix), {}).setdefault(prefix, []).append((index, matcher))
            self._lengths = sorted(self._globs)
        else:
            self._exact.setdefault(pattern, []).append(index)
            self._exact_lengths = sorted({len(p) for p in self._exact})
        return route

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)

    def __len__(self) -> int:
        return len(self._routes)

    def _covering(self, path: str) -> list[int]:
        """The indexes of the routes covering `path`, in registration order."""
        found: list[int] = []
        size = len(path)
        if self._exact_lengths:
            # An exact pattern covers `path` when it is `path` or one of its dotted
            # prefixes (`_paths.ancestors`): only the prefix lengths in use are looked up.
            exact = self._exact
            for length in self._exact_lengths:
                if length > size:
                    break
                if length == size or path[length] == ".":
                    hit = exact.get(path[:length])
                    if hit:
                        found += hit
        if self._lengths:
            globs = self._globs
            for length in self._lengths:
                if length > size:
                    break
                candidates = globs[length].get(path[:length])
                if candidates:
                    for index, matcher in candidates:
                        if matcher is None or matcher(path):
                            found.append(index)
        if len(found) > 1:
            found.sort()
        return found

    def _entry(self, path: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
        found = self._covering(path)
        if len(found) == 1:  # the common case, without a generator
            return (found[0],), (self._names[found[0]],)
        return tuple(found), tuple(self._names[i] for i in found)

    def names(self, path: str) -> tuple[str, ...]:
        """Names of the appliers that a change at `path` goes to, in the order they run."""
        return tuple(self._routes[i].name for i in self._covering(path))

    def route(self, changes: Sequence[Change]) -> tuple[list[Batch], dict[str, tuple[str, ...]]]:
        """Each applier's batch (non-empty ones, in registration order) and, per changed
        path, the names of the appliers it goes to: one matching pass for both."""
        routes = self._routes
        if not routes:
            return [], {change.path: () for change in changes}
        # By route index (no sort at the end): None, then the first change itself, then a
        # list from the second on (most appliers get one change: no list made for those).
        per: list[Any] = [None] * len(routes)
        names: dict[str, tuple[str, ...]] = {}
        cache = self._cache
        for change in changes:
            path = change.path
            entry = cache.get(path)
            if entry is None:
                entry = self._entry(path)
                if len(cache) >= _CACHED_PATHS:
                    cache.clear()
                cache[path] = entry
            found, names[path] = entry
            for i in found:
                batch = per[i]
                if batch is None:
                    per[i] = change
                elif type(batch) is list:
                    batch.append(change)
                else:
                    per[i] = [batch, change]
        # Tuples: an applier that mutates its batch cannot change what its rollback gets.
        batches = [
            (route, tuple(batch) if type(batch) is list else (batch,))
            for route, batch in zip(routes, per, strict=True)
            if batch is not None
        ]
        return batches, names

    def batches(self, changes: Sequence[Change]) -> list[Batch]:
        """Each applier's changes, for the appliers that get any, in registration order."""
        return self.route(changes)[0]


_CACHED_PATHS = 65536
"""Paths whose routing `Routes` remembers (mapping keys make paths unbounded)."""


def _literal_prefix(pattern: str) -> str:
    """What every path a glob matches starts with: the text before its first wildcard."""
    cut = min((i for i in (pattern.find(c) for c in "*?[") if i >= 0), default=len(pattern))
    return pattern[:cut]


def applier_name(applier: Any) -> str:
    """An applier's `name` attribute, else its qualified name, else its type's name."""
    name = getattr(applier, "name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(applier, "__qualname__", None) or type(applier).__name__

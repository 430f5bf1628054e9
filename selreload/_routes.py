"""Which applier gets which change: registrations and their matching, apart from the Reloader.

A route is an applier registered at a path or glob; it covers every change at or under
what it names. Matching is done once per reload for all changes (`batches`): exact
patterns are found by looking up each ancestor of a changed path in a dict, so routing
costs O(changes x depth + changes x globs), not O(changes x appliers).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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

    __slots__ = ("_exact", "_globs", "_routes")

    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._exact: dict[str, list[int]] = {}
        self._globs: list[tuple[int, str]] = []

    def add(self, pattern: str, applier: Any, name: str) -> Route:
        route = Route(pattern, applier, name)
        index = len(self._routes)
        self._routes.append(route)
        if _paths.is_glob(pattern):
            self._globs.append((index, pattern))
        else:
            self._exact.setdefault(pattern, []).append(index)
        return route

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)

    def __len__(self) -> int:
        return len(self._routes)

    def _covering(self, path: str) -> list[int]:
        found: list[int] = []
        exact = self._exact
        if exact:
            for prefix in _paths.ancestors(path):
                hit = exact.get(prefix)
                if hit:
                    found.extend(hit)
        for index, pattern in self._globs:
            if _paths.matches(pattern, path):
                found.append(index)
        if len(found) > 1:
            found.sort()
        return found

    def names(self, path: str) -> tuple[str, ...]:
        """Names of the appliers that a change at `path` goes to, in the order they run."""
        return tuple(self._routes[i].name for i in self._covering(path))

    def route(self, changes: Sequence[Change]) -> tuple[list[Batch], dict[str, tuple[str, ...]]]:
        """Each applier's batch (non-empty ones, in registration order) and, per changed
        path, the names of the appliers it goes to: one matching pass for both."""
        per: dict[int, list[Change]] = {}
        names: dict[str, tuple[str, ...]] = {}
        routes = self._routes
        for change in changes:
            covering = self._covering(change.path) if routes else []
            names[change.path] = tuple(routes[i].name for i in covering)
            for i in covering:
                per.setdefault(i, []).append(change)
        # Tuples: an applier that mutates its batch cannot change what its rollback gets.
        batches = [(routes[i], tuple(per[i])) for i in sorted(per)]
        return batches, names

    def batches(self, changes: Sequence[Change]) -> list[Batch]:
        """Each applier's changes, for the appliers that get any, in registration order."""
        return self.route(changes)[0]


def applier_name(applier: Any) -> str:
    """An applier's `name` attribute, else its qualified name, else its type's name."""
    name = getattr(applier, "name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(applier, "__qualname__", None) or type(applier).__name__

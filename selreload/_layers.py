"""Merge source layers into one tree and say where any path in it came from."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, SupportsIndex, TypeAlias

from ._errors import ConfigError, Issue
from ._paths import Part, render, split
from ._structure import Structurer
from ._typing import Layer
from ._values import printable
from ._yaml import Located

MAX_ISSUES: Final = 100
"""Issues listed per reload; the rest are counted in a last "+N more" issue. A million
problems once meant 19.5 s under the reload lock and a 70 MiB audit line."""


_DROPPED: Final = Issue("", "(an issue past the limit: counted, not kept)")


class Issues(list[Issue]):
    """An issue list that keeps the first `limit` and only counts the rest.

    `len()` is the count of every issue appended, kept or not, so a structurer that checks
    "did this value add issues?" by length behaves as with a plain list. Past the limit
    each issue is replaced by one shared placeholder (a pointer each, never shown), so
    `len()` stays the list's own: the structurer asks it twice per node, and a Python
    `__len__` cost ~2% of a reload.
    """

    def __init__(self, limit: int = MAX_ISSUES) -> None:
        super().__init__()
        self.limit = limit

    @property
    def dropped(self) -> int:
        """How many issues were counted but not kept."""
        return max(0, len(self) - self.limit)

    def append(self, issue: Issue) -> None:
        super().append(issue if len(self) < self.limit else _DROPPED)

    def extend(self, issues: Iterable[Issue]) -> None:
        for issue in issues:
            self.append(issue)

    def insert(self, index: SupportsIndex, issue: Issue) -> None:
        self.append(issue)

    def kept(self) -> list[Issue]:
        return list.__getitem__(self, slice(0, self.limit))


def capped(issues: Iterable[Issue], limit: int = MAX_ISSUES) -> list[Issue]:
    """The first `limit` issues and, when there were more, an issue saying how many more."""
    collector = issues if isinstance(issues, Issues) else Issues(limit)
    if collector is not issues:
        collector.extend(issues)
    return collector.kept() + _more(collector)


def _more(collector: Issues) -> list[Issue]:
    if not collector.dropped:
        return []
    msg = f"+{collector.dropped:,} more issues not listed (only the first {collector.limit} are)"
    return [Issue("", msg)]


def structure(structurer: Structurer, layers: Sequence[Layer], *, max_issues: int = MAX_ISSUES) -> Any:
    """Merge the layers and structure the tree into a config instance.

    Raises:
        ConfigError: the first `max_issues` issues found, each placed at its origin, in
            file order, then one "+N more" issue counting the rest.
    """
    collector = Issues(max_issues)
    # A document layer's tree is the parser's own (`Located` is its `locate`): never
    # modified, its unchanged parts handed back as the same objects.
    shared = all(layer.tree is None or type(layer.locate) is Located for layer in layers)
    config, _ = structurer.structure(merge(layer.tree for layer in layers), issues=collector, shared=shared)
    if collector:
        # Only the kept issues are placed: each costs a lookup in positions parsed once
        # per layer, so 100 issues cost one positions pass, not one per issue.
        raise ConfigError(place(collector.kept(), layers) + _more(collector))
    return config


def merge(trees: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Deep-merge mappings, later layers winning; lists and scalars are replaced whole.

    Inputs are never modified: merged mappings are new dicts.
    """
    out: dict[str, Any] = {}
    for tree in trees:
        if tree:
            out = _merge_two(out, tree)
    return out


def _merge_two(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    if not base:
        return dict(top)  # the first layer: nothing to merge into (no ABC check per key)
    out = dict(base)
    for key, value in top.items():
        below = out.get(key)
        if below is not None and isinstance(below, Mapping) and isinstance(value, Mapping):
            out[key] = _merge_two(below, value)
        else:
            out[key] = value
    return out


def _contains(tree: Any, parts: Sequence[Part]) -> bool:
    node = tree
    for part in parts:
        if isinstance(part, int):
            if not isinstance(node, list | tuple) or part >= len(node):
                return False
        elif not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _held(tree: Any, parts: Sequence[Part]) -> bool:
    """Whether this tree decides the value at `parts`: it holds the path, or a whole
    value (text, scalar, list) on the way to it, which replaces everything below."""
    node = tree
    for depth, part in enumerate(parts):
        if isinstance(part, int):
            if not isinstance(node, list | tuple):
                return depth > 0
            if part >= len(node):
                return False
        elif not isinstance(node, Mapping):
            return depth > 0
        elif part not in node:
            return False
        node = node[part]
    return True


def _located(layer: Layer, parts: Sequence[Part], depth: int, *, key: bool = False) -> str:
    located = layer.locate()
    if key and depth == len(parts):
        # An issue about the key itself (unknown key) points at the key, not its value.
        keys: Mapping[str, str] = getattr(located, "keys_at", {})
        found = keys.get(render(parts))
        if found:
            return found
    # The exact path first, then the nearest located ancestor in that layer.
    for d in range(depth, 0, -1):
        found = located.get(render(parts[:d]))
        if found:
            return found
    return layer.name


def origin_of(path: str, layers: Sequence[Layer]) -> str:
    """The origin of `path` in the merged tree: the last layer that decides it (or, for a
    missing key, the last layer holding its nearest parent), at the position that layer
    recorded; `"default"` when no layer holds any of it."""
    return _origin(split(path), layers, nearest=True)


def _origin(parts: Sequence[Part], layers: Sequence[Layer], *, nearest: bool, key: bool = False) -> str:
    for layer in reversed(layers):
        if layer.tree is not None and _held(layer.tree, parts):
            return _located(layer, parts, len(parts), key=key)
    if nearest:
        for depth in range(len(parts) - 1, 0, -1):
            prefix = parts[:depth]
            for layer in reversed(layers):
                if layer.tree is not None and _contains(layer.tree, prefix):
                    return _located(layer, parts, depth)
    return "default"


# The structurer's issues about a key rather than its value ("unknown key; did you mean",
# "key holds a control or invisible character": `key ` and what is wrong with it).
_KEY_ISSUES: Final = ("unknown key", "key ")
_POSITION = re.compile(r"(?P<name>.*):(?P<line>\d+):(?P<col>\d+)")


def place(issues: Iterable[Issue], layers: Sequence[Layer]) -> list[Issue]:
    """Give every issue without an origin the origin of its path, and list them like a
    compiler: by layer, then line and column (issues without a position keep their order)."""
    placed = []
    shown: dict[int, _Shown] = {}
    for issue in issues:
        if issue.origin is None:
            key = issue.message.startswith(_KEY_ISSUES)
            parts = _keys_of(issue.path, layers, key_issue=key, shown=shown)
            issue = Issue(issue.path, issue.message, _origin(parts, layers, nearest=True, key=key))
        placed.append(issue)
    rank = {layer.name: i for i, layer in enumerate(layers)}

    def position(issue: Issue) -> tuple[int, int, int]:
        origin = issue.origin or ""
        m = _POSITION.fullmatch(origin)
        if m is None:
            return rank.get(origin, len(layers)), 0, 0
        return rank.get(m["name"], len(layers)), int(m["line"]), int(m["col"])

    return sorted(placed, key=position)


def _keys_of(path: str, layers: Sequence[Layer], *, key_issue: bool, shown: dict[int, _Shown]) -> list[Part]:
    """The keys the path an issue shows stands for. A path shows each key as one printable
    line (`a\\tb` for a key holding a tab), joined with dots and `[i]`, which no split can
    undo for a key holding a dot or a bracket: the keys are found in the layers' trees by
    how they show (the last layer first). Where two keys show the same (a tab, and a
    backslash and a `t`), an issue about a key is taken to be about the one that is not
    printable (only such a key is refused for itself), any other about the other.

    `shown` caches each mapping's keys by how they show, for all the issues of one call:
    a document of thousands of such keys costs one pass over each mapping, not one per issue.
    """
    parts = split(path)
    if render(parts) == path and not any(isinstance(p, str) and "\\" in p for p in parts):
        return parts  # nothing escaped, and the path splits back into what it shows
    for layer in reversed(layers):
        found = _walk(layer.tree, path, key_issue, shown)
        if found is not None:
            return found
    return parts


_Shown: TypeAlias = tuple[dict[str, list[Any]], frozenset[int]]
"""A mapping's keys by how a path shows them, and the lengths of those texts."""
_SEPARATOR: Final = re.compile(r"[.\[]")
_INDEX: Final = re.compile(r"\[(\d+)\]")


def _walk(node: Any, rest: str, key_issue: bool, shown: dict[int, _Shown]) -> list[Part] | None:
    """The keys below `node` that show as `rest` (a key's text first, or `[i]`), or None."""
    if isinstance(node, Mapping):
        keys = shown.get(id(node))
        if keys is None:
            by_text: dict[str, list[Any]] = {}
            for key in node:
                if isinstance(key, str | int):
                    by_text.setdefault(str(printable(key)), []).append(key)
            keys = shown[id(node)] = (by_text, frozenset(len(t) for t in by_text))
        by_text, lengths = keys
        # Only where a key that long could end: a path of a million dots is cut at most
        # once per key length the mapping holds.
        cuts = [m.start() for m in _SEPARATOR.finditer(rest) if m.start() in lengths] + [len(rest)]
        for cut in cuts:
            found = by_text.get(rest[:cut])
            if not found:
                continue
            if len(found) > 1:  # look-alikes: the one the issue is about first
                found = sorted(found, key=lambda k: (type(k) is str and not k.isprintable()) != key_issue)
            for key in found:
                if cut == len(rest):
                    return [key]
                below = _walk(node[key], _next_part(rest[cut:]), key_issue, shown)
                if below is not None:
                    return [key, *below]
        return None
    if isinstance(node, list | tuple):
        m = _INDEX.match(rest)
        if m is None or int(m[1]) >= len(node):
            return None
        index, after = int(m[1]), rest[m.end() :]
        if not after:
            return [index]
        below = _walk(node[index], _next_part(after), key_issue, shown)
        return None if below is None else [index, *below]
    return None


def _next_part(rest: str) -> str:
    """The path after a part: a key's text (past its `.`) or an `[i]`."""
    return rest[1:] if rest[:1] == "." else rest


def origins(paths: Iterable[str], layers: Sequence[Layer]) -> dict[str, str]:
    """`{path: origin}` for every leaf path of a config; a leaf no layer holds (even when
    its parent section is in a file) came from its `default`."""
    return {p: _origin(split(p), layers, nearest=False) for p in paths}


def retained(layers: Sequence[Layer]) -> Callable[[], list[Layer]]:
    """The layers again, later, for `origins`: what a snapshot keeps instead of the layers.

    A document layer (one whose `locate` can parse its text again, `_yaml.Located`) is kept
    as its text, not its tree: a 10,000-leaf snapshot retained the parsed tree and the text,
    ~5x the config. Other layers (env, overrides) are small and kept as they are.
    """
    kept = [
        (layer.name, layer.digest, layer.locate, layer.revision)
        if callable(getattr(layer.locate, "tree", None))
        else layer
        for layer in layers
    ]

    def again() -> list[Layer]:
        return [k if isinstance(k, Layer) else Layer(k[0], _tree(k[2]), k[1], k[2], revision=k[3]) for k in kept]

    return again


def _tree(located: Any) -> Any:
    try:
        return located.tree()
    except ConfigError:  # the same text parsed before: only a changed budget could refuse it
        return None

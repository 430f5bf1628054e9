"""Merge source layers into one tree and say where any path in it came from."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._errors import Issue
from ._typing import Layer

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split_path(path: str) -> list[str | int]:
    """`providers[1].name` -> `["providers", 1, "name"]`."""
    return [int(i) if i else k for k, i in _PART.findall(path)]


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
    out = dict(base)
    for key, value in top.items():
        below = out.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            out[key] = _merge_two(below, value)
        else:
            out[key] = value
    return out


def _contains(tree: Any, parts: Sequence[str | int]) -> bool:
    node = tree
    for part in parts:
        if isinstance(part, int):
            if not isinstance(node, list | tuple) or part >= len(node):
                return False
        elif not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _render(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def origin_of(path: str, layers: Sequence[Layer]) -> str:
    """The origin of `path` in the merged tree: the last layer holding it (or, for a
    missing key, its nearest parent), at the position that layer recorded."""
    parts = split_path(path)
    for depth in range(len(parts), 0, -1):
        prefix = parts[:depth]
        for layer in reversed(layers):
            if layer.tree is not None and _contains(layer.tree, prefix):
                located = layer.locate()
                # The exact path first, then the nearest located ancestor in that layer.
                for d in range(depth, 0, -1):
                    found = located.get(_render(parts[:d]))
                    if found:
                        return found
                return layer.name
    return "default"


def place(issues: Iterable[Issue], layers: Sequence[Layer]) -> list[Issue]:
    """Give every issue without an origin the origin of its path."""
    placed = []
    for issue in issues:
        if issue.origin is None:
            issue = Issue(issue.path, issue.message, origin_of(issue.path, layers))
        placed.append(issue)
    return placed


def origins(paths: Iterable[str], layers: Sequence[Layer]) -> dict[str, str]:
    """`{path: origin}` for every leaf path of a config."""
    return {p: origin_of(p, layers) for p in paths}

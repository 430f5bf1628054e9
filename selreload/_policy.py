"""Policy files: YAML that overrides declared policies by path glob."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from . import _args
from ._errors import ConfigError, PolicyError
from ._paths import hint
from ._schema import PolicySet
from ._yaml import roundtrip

_KINDS = ("hot", "restart", "secret")

PolicyInput = str | os.PathLike[str] | PolicySet


def load_policy_file(path: str | os.PathLike[str]) -> PolicySet:
    """Read a policy file (`hot:`, `restart:`, `secret:` lists of path globs; `name:` and
    `description:` are allowed for people).

    Raises:
        PolicyError: unreadable, not YAML, unknown keys, or lists of non-strings; the
            message starts with `file:line:col` where the problem is.
    """
    name = os.fspath(path)
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PolicyError(f"{name}: cannot read policy file: {reason}") from None
    try:
        # Round-trip mode for line/col: policy files are a few lines, speed is moot.
        doc: Any = roundtrip(name, text)
    except ConfigError as exc:
        raise PolicyError(str(exc)) from None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise PolicyError(f"{name}: expected a mapping with keys {', '.join(_KINDS)}")

    def at(line: int, col: int) -> str:
        return f"{name}:{line + 1}:{col + 1}"

    for key in doc:
        if key not in _KINDS and key not in ("name", "description"):
            tip = hint(str(key), _KINDS, otherwise=f"; expected {', '.join(_KINDS)}")
            raise PolicyError(f"{at(*doc.lc.key(key))}: unknown key {str(key)!r}{tip}")
    lists: dict[str, tuple[str, ...]] = {}
    positions: dict[str, str] = {}
    for kind in _KINDS:
        items = doc.get(kind)
        if items is None:  # absent, or `hot:` with nothing after it
            lists[kind] = ()
            continue
        if not isinstance(items, CommentedSeq):
            raise PolicyError(f"{at(*doc.lc.value(kind))}: {kind}: expected a list of path globs, got {items!r}")
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                raise PolicyError(f"{at(*items.lc.item(i))}: {kind}: expected a path glob, got {item!r}")
            positions.setdefault(f"{kind}:{item}", at(*items.lc.item(i)))
        lists[kind] = tuple(str(item) for item in items)
    return PolicySet(
        hot=lists["hot"], restart=lists["restart"], secret=lists["secret"], source=name, positions=positions
    )


def load_policies(policies: PolicyInput | Iterable[PolicyInput] | None) -> list[PolicySet]:
    """Normalize the `policies=` argument: a path, a PolicySet, or a list of them."""
    if policies is None:
        return []
    if isinstance(policies, str | os.PathLike | PolicySet):
        policies = [policies]
    check = lambda name, p: p if isinstance(p, PolicySet) else _args.path("Reloader", name, p)  # noqa: E731
    return [
        p if isinstance(p, PolicySet) else load_policy_file(p)
        for p in _args.each("Reloader", "policies", policies, check)
    ]

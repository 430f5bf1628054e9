"""Policy files: YAML that overrides declared policies by path glob."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ._errors import PolicyError
from ._schema import PolicySet

_KINDS = ("hot", "restart", "secret")

PolicyInput = str | os.PathLike[str] | PolicySet


def load_policy_file(path: str | os.PathLike[str]) -> PolicySet:
    """Read a policy file (`hot:`, `restart:`, `secret:` lists of path globs).

    Raises:
        PolicyError: unreadable, not YAML, unknown keys, or lists of non-strings.
    """
    name = os.fspath(path)
    try:
        doc: Any = YAML(typ="safe", pure=False).load(pathlib.Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"{name}: cannot read policy file: {exc.strerror or exc}") from None
    except YAMLError as exc:
        raise PolicyError(f"{name}: not valid YAML: {exc}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise PolicyError(f"{name}: expected a mapping with keys {', '.join(_KINDS)}")
    doc = {k: v for k, v in doc.items() if k not in ("name", "description")}
    unknown = sorted(set(map(str, doc)) - set(_KINDS))
    if unknown:
        raise PolicyError(f"{name}: unknown key {unknown[0]!r}; expected {', '.join(_KINDS)}")
    lists: dict[str, tuple[str, ...]] = {}
    for kind in _KINDS:
        items = doc.get(kind) or []
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise PolicyError(f"{name}: {kind}: expected a list of path globs")
        lists[kind] = tuple(items)
    return PolicySet(hot=lists["hot"], restart=lists["restart"], secret=lists["secret"], source=name)


def load_policies(policies: PolicyInput | Iterable[PolicyInput] | None) -> list[PolicySet]:
    """Normalize the `policies=` argument: a path, a PolicySet, or a list of them."""
    if policies is None:
        return []
    if isinstance(policies, str | os.PathLike | PolicySet):
        policies = [policies]
    return [p if isinstance(p, PolicySet) else load_policy_file(p) for p in policies]

"""What the text layers (env, .env, secrets) share: flat names to a tree (`A__B` -> `a.b`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from .._errors import ConfigError, Issue
from .._paths import join
from .._typing import Layer
from .._values import EnvText, text_problem

MAX_SECRET_BYTES: Final = 1024 * 1024
"""Largest file a `*_FILE` variable (or a secrets directory) may name: 1 MiB, past any
password, key or certificate chain."""


def secret_text(data: bytes) -> str | None:
    """The text of a secret file, its trailing newline stripped (`echo pw > file` writes
    one); `None` when it is not UTF-8. Other whitespace is kept: it may be the secret."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text.removesuffix("\n").removesuffix("\r")


def nest(
    entries: Iterable[tuple[str, str, str, str]], *, what: str = "the variable name"
) -> tuple[dict[str, Any], dict[str, str], list[Issue]]:
    """Build the tree of a layer of flat names; `__` nests, names are lowercased.

    Args:
        entries: `(name, key, value, origin)`: the name as messages show it
            (`APP_DATABASE__PASSWORD`), the key without its prefix (`DATABASE__PASSWORD`),
            the text, and the origin of the value (`env:APP_DATABASE__PASSWORD`).
        what: how a message names a name (`the variable name`, `the file name`).

    Returns:
        `(tree, {path: origin}, issues)`; every value is `EnvText`, parsed later by the
        field's type. Two names for one path (`A` and `a`, or `A` and `A__B`) are an issue.
    """
    tree: dict[str, Any] = {}
    where: dict[str, str] = {}
    setter: dict[str, str] = {}  # path -> the name that set it (to name conflicts)
    issues: list[Issue] = []
    for name, key, value, origin in entries:
        if text_problem(key) is not None:
            issues.append(Issue("", f"cannot name a setting: {what} is not valid text", origin))
            continue
        parts = [p.lower() for p in key.split("__")]
        if not all(parts):
            issues.append(Issue("", "cannot name a setting: empty part between '__' separators", origin))
            continue
        node = tree
        path = ""
        for depth, part in enumerate(parts):
            path = join(path, part)
            last = depth == len(parts) - 1
            held = node.get(part)
            if held is not None and (last or not isinstance(held, dict)):
                issues.append(Issue(path, f"set by both {setter[path]} and {name}: use one", origin))
                break
            where.setdefault(path, origin)
            setter.setdefault(path, name)
            if last:
                node[part] = EnvText(value)
            else:
                node = node.setdefault(part, {})
    return tree, where, issues


def nested_layer(
    name: str, digest: str, entries: Iterable[tuple[str, str, str, str]], issues: list[Issue], *, what: str
) -> Layer:
    """The layer `nest(entries)` builds, or `ConfigError` with `issues` and its own."""
    tree, where, found = nest(entries, what=what)
    if issues or found:
        raise ConfigError([*issues, *found])
    return Layer(name, tree or None, digest, lambda: where)

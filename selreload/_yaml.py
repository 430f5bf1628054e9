"""Documents from bytes to a checked `Layer`, and YAML with positions: for files, etcd and policy files."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ._errors import ConfigError, Issue
from ._guard import MAX_NODES, check_tree, prescan
from ._paths import item, join
from ._typing import Layer


def _kind_name(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _error(message: str, name: str) -> ConfigError:
    return ConfigError([Issue("", message, name)])


def document_layer(
    name: str,
    data: bytes,
    digest: str,
    *,
    format: str,
    parse: Callable[[str], Any],
    positions: Callable[[str, str], Mapping[str, str]],
    max_nodes: int = MAX_NODES,
) -> Layer:
    """Check and parse the bytes of one document (any format) into a `Layer` named `name`.

    Args:
        format: the format's name in messages (`YAML`).
        parse: text -> tree, fast; raises `ConfigError` (with line:col) for a syntax error.
        positions: `(name, text) -> {dotted path: "name:line:col"}`, called lazily.
        max_nodes: the budget of the expanded tree.

    Raises:
        ConfigError: not UTF-8, a syntax error, empty, not a mapping, or over the nesting
            and size budgets.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"not UTF-8 text: invalid byte 0x{data[exc.start]:02x} at offset {exc.start} (binary file?)"
        raise _error(msg, name) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        what = "empty" if not text else "empty (only whitespace)"
        raise _error(f"file is {what}: expected a mapping of settings", name)
    prescan(text, name)
    try:
        tree = parse(text)
    except RecursionError:
        raise _error("too deeply nested: the parser ran out of stack", name) from None
    except ConfigError:
        raise
    except (ValueError, OverflowError) as exc:  # e.g. an int over 4,300 digits
        raise _error(f"cannot parse {format}: {exc}", name) from None
    if tree is None:
        raise _error("file has no settings (only comments?): expected a mapping of settings", name)
    if not isinstance(tree, Mapping):
        raise _error(f"expected a mapping of settings at the top level, got {_kind_name(tree)}", name)
    check_tree(tree, name, max_nodes=max_nodes)
    cache: list[Mapping[str, str]] = []

    def locate() -> Mapping[str, str]:
        if not cache:
            try:
                cache.append(positions(name, text))
            except Exception:  # noqa: BLE001 - positions are a nicety: fall back to the file name
                cache.append({})
        return cache[0]

    return Layer(name, tree, digest, locate)


# --- YAML ---------------------------------------------------------------------------------

_DUPLICATE = re.compile(r'found duplicate key "(?P<key>.*?)" with value ')


_local = threading.local()


def safe_yaml() -> YAML:
    """This thread's safe loader."""
    # The C loader when ruamel.yaml.clib is installed (3x faster than pure Python). One per
    # thread, reused: building a YAML() scans for plug-ins (a glob), 0.3 ms per call.
    yaml: YAML | None = getattr(_local, "yaml", None)
    if yaml is None:
        yaml = _local.yaml = YAML(typ="safe", pure=False)
    return yaml


def yaml_error(name: str, exc: YAMLError) -> ConfigError:
    """ruamel's error as a `ConfigError` at `name:line:col`, naming no value."""
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}"
        if isinstance(exc, DuplicateKeyError):
            # ruamel's message quotes both values: a secret's would leak. Name the key only.
            m = _DUPLICATE.search(exc.problem or "")
            key = f" {m['key']!r}" if m else ""
            return ConfigError([Issue("", f"duplicate key{key}: each key may appear once in a mapping", where)])
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        return ConfigError([Issue("", f"YAML syntax error: {problem}{context}", where)])
    # A reader error (control characters) carries a character offset, not a line.
    text = str(exc).split("\n", 1)[0]
    return ConfigError([Issue("", f"not valid YAML: {text}", name)])


def roundtrip(name: str, text: str) -> Any:
    """The round-trip tree of `text` (`CommentedMap`s that know each value's line and column).

    Raises:
        ConfigError: a YAML error, at `name:line:col`.
    """
    # A loader per call, unlike `safe_yaml`: the callers (positions on demand, policy files
    # at start) are rare enough that the 0.3 ms to build one does not matter.
    try:
        return YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise yaml_error(name, exc) from None


def yaml_positions(name: str, text: str) -> dict[str, str]:
    """`{dotted path: "name:line:col"}` of every value, from a round-trip parse."""
    doc = roundtrip(name, text)
    out: dict[str, str] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, CommentedMap):
            for key in node:
                sub = join(path, key)
                try:
                    line, col = node.lc.value(key)
                except (KeyError, TypeError):
                    line, col = node.lc.key(key)
                out[sub] = f"{name}:{line + 1}:{col + 1}"
                walk(node[key], sub)
        elif isinstance(node, CommentedSeq):
            for i, value in enumerate(node):
                sub = item(path, i)
                line, col = node.lc.item(i)
                out[sub] = f"{name}:{line + 1}:{col + 1}"
                walk(value, sub)

    walk(doc, "")
    return out


def parse_document(name: str, data: bytes, digest: str, *, max_nodes: int = MAX_NODES) -> Layer:
    """Parse a YAML document exactly like `YamlFile` parses a file, naming it `name`
    (`etcd:/app/config@42`), so origins read `etcd:/app/config@42:3:10`.

    Raises:
        ConfigError: not UTF-8, a YAML error (at `name:line:col`), empty, not a mapping,
            or over the nesting and size budgets.
    """

    def parse(text: str) -> Any:
        try:
            return safe_yaml().load(text)
        except YAMLError as exc:
            raise yaml_error(name, exc) from None

    return document_layer(name, data, digest, format="YAML", parse=parse, positions=yaml_positions, max_nodes=max_nodes)

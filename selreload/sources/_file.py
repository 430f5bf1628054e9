"""File sources: YAML (positions from ruamel.yaml's round-trip mode)."""

from __future__ import annotations

import hashlib
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .._errors import ConfigError, Issue
from .._typing import Layer, Watcher


def _safe_yaml() -> YAML:
    # The C loader when ruamel.yaml.clib is installed (3x faster than pure Python).
    return YAML(typ="safe", pure=False)


def _yaml_error(name: str, exc: YAMLError) -> ConfigError:
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        return ConfigError(
            [Issue("", f"YAML syntax error: {problem}{context}", f"{name}:{mark.line + 1}:{mark.column + 1}")]
        )
    return ConfigError([Issue("", f"YAML error: {exc}", name)])


def yaml_positions(name: str, text: str) -> dict[str, str]:
    """`{dotted path: "name:line:col"}` of every value, from a round-trip parse."""
    doc = YAML(typ="rt").load(text)
    out: dict[str, str] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, CommentedMap):
            for key in node:
                sub = f"{path}.{key}" if path else str(key)
                try:
                    line, col = node.lc.value(key)
                except (KeyError, TypeError):
                    line, col = node.lc.key(key)
                out[sub] = f"{name}:{line + 1}:{col + 1}"
                walk(node[key], sub)
        elif isinstance(node, CommentedSeq):
            for i, item in enumerate(node):
                sub = f"{path}[{i}]"
                line, col = node.lc.item(i)
                out[sub] = f"{name}:{line + 1}:{col + 1}"
                walk(item, sub)

    walk(doc, "")
    return out


class YamlFile:
    """A YAML file layer.

    Args:
        path: the file. Relative paths are resolved when the source is created.
        required: a missing required file is an error; a missing optional one is an
            absent layer.
    """

    def __init__(self, path: str | os.PathLike[str], *, required: bool = True) -> None:
        self.path = pathlib.Path(path).absolute()
        self.required = required
        self._display = os.fspath(path)
        self._last: Layer | None = None

    @property
    def name(self) -> str:
        return self._display

    def __repr__(self) -> str:
        return f"YamlFile({self._display!r}, required={self.required})"

    def _read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            if self.required:
                raise ConfigError([Issue("", "required config file is missing", self._display)]) from None
            return None
        except OSError as exc:
            raise ConfigError([Issue("", f"cannot read: {exc.strerror or exc}", self._display)]) from None

    def load(self) -> Layer:
        data = self._read()
        if data is None:
            return Layer(self._display, None, "absent")
        digest = hashlib.sha256(data).hexdigest()
        if self._last is not None and self._last.digest == digest:
            return self._last  # same bytes: skip the parse
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError([Issue("", f"not UTF-8 text (byte {exc.start})", self._display)]) from None
        try:
            tree = _safe_yaml().load(text)
        except YAMLError as exc:
            raise _yaml_error(self._display, exc) from None
        if tree is None:
            raise ConfigError([Issue("", "file is empty: expected a mapping of settings", self._display)])
        if not isinstance(tree, Mapping):
            raise ConfigError(
                [Issue("", f"expected a mapping of settings at the top, got {type(tree).__name__}", self._display)]
            )
        name = self._display
        cache: dict[str, dict[str, str]] = {}

        def locate() -> Mapping[str, str]:
            if "v" not in cache:
                cache["v"] = yaml_positions(name, text)
            return cache["v"]

        layer = Layer(self._display, tree, digest, locate)
        self._last = layer
        return layer

    def watch(self, notify: Callable[[str], None]) -> Watcher | None:
        return None

"""TOML file layer: the tree from `tomllib`, positions from a line scanner.

`tomllib` keeps no positions, so a small scanner reads key lines and table headers
(`[a.b]`, `[[servers]]`, dotted keys) for `file:line:col`. Values inside inline tables
and arrays get the position of the key that holds them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from .._errors import ConfigError, Issue
from .._paths import item, join
from ._file import FileSource

_AT = re.compile(r"\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_BASIC = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_LITERAL = re.compile(r"'[^'\n]*'")


def _keys(line: str, pos: int) -> tuple[list[str], int]:
    """Read a dotted key (`a."b c".d`) at `pos`; returns its parts and the end."""
    parts: list[str] = []
    while True:
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos < len(line) and line[pos] == '"':
            m = _BASIC.match(line, pos)
            if m is None:
                break
            parts.append(tomllib.loads(f"k = {m.group()}")["k"])
        elif pos < len(line) and line[pos] == "'":
            m = _LITERAL.match(line, pos)
            if m is None:
                break
            parts.append(m.group()[1:-1])
        else:
            m = _BARE.match(line, pos)
            if m is None:
                break
            parts.append(m.group())
        pos = m.end()
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos < len(line) and line[pos] == ".":
            pos += 1
            continue
        break
    return parts, pos


def _open_brackets(text: str, state: list[str]) -> int:
    """Net `[`/`{` opened in `text`, outside strings and comments. `state[0]` carries an
    unclosed multi-line string delimiter from line to line."""
    depth, i, n = 0, 0, len(text)
    while i < n:
        if state[0]:
            end = text.find(state[0], i)
            if end < 0:
                return depth
            i, state[0] = end + 3, ""
            continue
        c = text[i]
        if c == "#":
            break
        if text.startswith(('"""', "'''"), i):
            state[0] = text[i : i + 3]
            i += 3
        elif c == '"':
            m = _BASIC.match(text, i)
            i = m.end() if m else n
        elif c == "'":
            m = _LITERAL.match(text, i)
            i = m.end() if m else n
        else:
            if c in "[{":
                depth += 1
            elif c in "]}":
                depth -= 1
            i += 1
    return depth


def toml_positions(name: str, text: str) -> dict[str, str]:
    """`{dotted path: "name:line:col"}` for keys, tables and array-of-table items."""
    out: dict[str, str] = {}
    arrays: dict[str, int] = {}  # path of an array of tables -> index of its last item
    table = ""
    lines = text.splitlines()
    i = 0

    def resolve(parts: list[str]) -> str:
        path = ""
        for part in parts:
            path = join(path, part)
            if path in arrays:  # a key under [[x]] means its last item
                path = item(path, arrays[path])
        return path

    while i < len(lines):
        line = lines[i]
        col = len(line) - len(line.lstrip())
        stripped = line[col:]
        i += 1
        if not stripped or stripped[0] == "#":
            continue
        here = f"{name}:{i}:{col + 1}"
        if stripped.startswith("[["):
            parts, _ = _keys(line, col + 2)
            base = resolve(parts[:-1])
            base = join(base, parts[-1])
            arrays[base] = arrays.get(base, -1) + 1
            out.setdefault(base, here)
            table = item(base, arrays[base])
            out[table] = here
            continue
        if stripped[0] == "[":
            parts, _ = _keys(line, col + 1)
            table = resolve(parts)
            out.setdefault(table, here)
            continue
        parts, end = _keys(line, col)
        eq = line.find("=", end)
        if not parts or eq < 0:
            continue
        value_col = len(line) - len(line[eq + 1 :].lstrip())
        path = table
        for part in parts:
            path = join(path, part)
        out[path] = f"{name}:{i}:{value_col + 1}"
        # Skip the continuation lines of a multi-line array or string.
        state = [""]
        depth = _open_brackets(line[eq + 1 :], state)
        while (depth > 0 or state[0]) and i < len(lines):
            depth += _open_brackets(lines[i], state)
            i += 1
    return out


class TomlFile(FileSource):
    """A TOML file layer (same arguments as `YamlFile`), parsed with `tomllib`."""

    format = "TOML"

    def _parse(self, text: str) -> Any:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            m = _AT.search(message)
            where = f"{self._display}:{m['line']}:{m['col']}" if m else self._display
            message = message[: m.start()] if m else message.replace(" (at end of document)", "")
            if message.startswith("Cannot overwrite a value"):
                message = "duplicate key: each key may appear once in a table"
            else:
                message = f"TOML syntax error: {message}"
            raise ConfigError([Issue("", message, where)]) from None

    def _positions(self, name: str, text: str) -> Mapping[str, str]:
        return toml_positions(name, text)

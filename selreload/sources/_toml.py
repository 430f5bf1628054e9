"""TOML file layer: the tree from `tomllib`, positions from a line scanner.

`tomllib` keeps no positions, so a small scanner reads key lines and table headers
(`[a.b]`, `[[servers]]`, dotted keys) for `file:line:col`. Values inside inline tables
and arrays get the position of the key that holds them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any, Final

from .._errors import ConfigError, Issue
from .._guard import too_many_nodes
from .._paths import item, join
from .._yaml import Positions, problem_text
from ._file import FileSource
from ._scan import TOML_STRINGS, line_col, offset_of, unclosed, what

_AT = re.compile(r"\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_KEY_LINE = re.compile(r"^[ \t]*[A-Za-z0-9_\"'-][^=\n]*=", re.MULTILINE)
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


def toml_positions(name: str, text: str) -> Positions:
    """`{dotted path: "name:line:col"}` for values, tables and array-of-table items; keys
    (and table headers) in `.keys_at`."""
    out = Positions()
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
            out.keys_at.setdefault(base, here)
            table = item(base, arrays[base])
            out[table] = here
            continue
        if stripped[0] == "[":
            parts, _ = _keys(line, col + 1)
            table = resolve(parts)
            out.setdefault(table, here)
            out.keys_at.setdefault(table, here)
            continue
        parts, end = _keys(line, col)
        eq = line.find("=", end)
        if not parts or eq < 0:
            continue
        value_col = len(line) - len(line[eq + 1 :].lstrip())
        path = table
        for part in parts:
            path = join(path, part)
            out.keys_at.setdefault(path, here)
        out[path] = f"{name}:{i}:{value_col + 1}"
        # Skip the continuation lines of a multi-line array or string.
        state = [""]
        depth = _open_brackets(line[eq + 1 :], state)
        while (depth > 0 or state[0]) and i < len(lines):
            depth += _open_brackets(lines[i], state)
            i += 1
    return out


_DUPLICATES: Final = (
    "Cannot overwrite",
    "Cannot declare",
    "Duplicate inline table key",
    "Cannot redefine",
    "Cannot mutate",
)
_CLOSERS: Final = ("Unclosed array", "Unclosed inline table", "Unterminated string", "Illegal character")


def _syntax_error(name: str, text: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    message = str(exc)
    m = _AT.search(message)
    if m is not None:
        line, col = int(m["line"]), int(m["col"])
        message = message[: m.start()]
    else:
        message = message.replace(" (at end of document)", "")
        line, col = line_col(text, len(text))
    if message.startswith(_DUPLICATES):
        # These quote the key path; one message for all of them.
        return ConfigError([Issue("", "duplicate key: each key or table may be defined once", f"{name}:{line}:{col}")])
    # `Illegal character '\n'`, `Found invalid character 'x'`: quoted document text goes.
    problem = problem_text(message)
    if message.startswith(_CLOSERS):
        limit = offset_of(text, line, col)
        found = unclosed(text, limit, strings=TOML_STRINGS, quotes="\"'", comment="#")
        if found is not None and found[0] < limit:
            at_line, at_col = line_col(text, found[0])
            msg = f"TOML syntax error: {what(found[1])} (at {line}:{col}: {problem})"
            return ConfigError([Issue("", msg, f"{name}:{at_line}:{at_col}")])
    return ConfigError([Issue("", f"TOML syntax error: {problem}", f"{name}:{line}:{col}")])


class TomlFile(FileSource):
    """A TOML file layer (same arguments as `YamlFile`), parsed with `tomllib`."""

    format = "TOML"
    deep_text_check = False  # tomllib stops at the recursion limit within a few milliseconds

    def _parse(self, text: str) -> Any:
        # tomllib is pure Python (~2 s for 200,000 keys): refuse what is surely over the
        # budget first. Each `key = value` line holds at least one value, and without
        # multi-line strings no such line can be inside a string.
        plain = '"""' not in text and "'''" not in text
        if len(text) > 2 * self.max_nodes and plain and sum(1 for _ in _KEY_LINE.finditer(text)) > self.max_nodes:
            raise too_many_nodes(self._display, self.max_nodes)
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _syntax_error(self._display, text, exc) from None

    def _positions(self, name: str, text: str) -> Mapping[str, str]:
        return toml_positions(name, text)

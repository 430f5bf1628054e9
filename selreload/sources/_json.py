"""JSON file layer: the tree from the C `json` parser, positions from a small scanner."""

from __future__ import annotations

import bisect
import contextlib
import json
import json.decoder
import re
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import ConfigError, Issue
from .._paths import item, join
from .._yaml import Positions
from ._file import FileSource
from ._scan import JSON_STRINGS, line_col, unclosed, what

_WS = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null|NaN|-?Infinity")


# The C string scanner `json` itself uses (typeshed does not declare it).
scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Duplicate
    return out


class _End(Exception):
    """The text ended or broke off where the scanner expected more."""


class _Scanner:
    """Walks JSON text once, recording where each value and each key starts.

    Iterative (an explicit stack), so depth is no concern. It does not check the grammar,
    and it also runs on text `json` rejected (to place a duplicate key, which the parser
    reports before it reaches a later syntax error): any text it cannot follow ends the
    scan with what it found so far, never an exception.
    """

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.lines = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self.positions = Positions()
        self.duplicate: tuple[str, str] | None = None  # (path, origin) of the first repeat

    def where(self, pos: int) -> str:
        line = bisect.bisect_right(self.lines, pos) - 1
        return f"{self.name}:{line + 1}:{pos - self.lines[line] + 1}"

    def ws(self, pos: int) -> int:
        m = _WS.match(self.text, pos)
        return m.end() if m else pos

    def at(self, pos: int) -> str:
        if pos >= len(self.text):
            raise _End
        return self.text[pos]

    def string(self, pos: int) -> tuple[str, int]:
        """The string whose opening quote is at `pos`, and the offset after it."""
        if self.at(pos) != '"':
            raise _End
        try:
            return scanstring(self.text, pos + 1)
        except ValueError:  # unterminated, or a bad escape
            raise _End from None

    def key(self, pos: int, path: str, seen: set[str]) -> tuple[str, int]:
        """Read `"key" :` at `pos`; returns the value's path and where the value starts."""
        key, end = self.string(pos)
        sub = join(path, key)
        if key in seen and self.duplicate is None:
            self.duplicate = (sub, self.where(pos))
        seen.add(key)
        self.positions.keys_at[sub] = self.where(pos)
        end = self.ws(end)
        if self.at(end) != ":":
            raise _End
        return sub, self.ws(end + 1)

    def run(self) -> None:
        with contextlib.suppress(_End):
            self._run()

    def _run(self) -> None:
        text = self.text
        # Frames: [kind, path, item count, keys seen]
        stack: list[list[Any]] = []
        pos, path = self.ws(0), ""
        while True:
            # A value starts at `pos`.
            c = self.at(pos)
            if path:
                self.positions[path] = self.where(pos)
            if c == "{":
                pos = self.ws(pos + 1)
                if self.at(pos) != "}":
                    seen: set[str] = set()
                    stack.append(["obj", path, 0, seen])
                    path, pos = self.key(pos, path, seen)
                    continue
                pos += 1
            elif c == "[":
                pos = self.ws(pos + 1)
                if self.at(pos) != "]":
                    stack.append(["arr", path, 0, None])
                    path = item(path, 0)
                    continue
                pos += 1
            elif c == '"':
                _, pos = self.string(pos)
            else:
                m = _SCALAR.match(text, pos)
                pos = m.end() if m else pos + 1
            # The value ended: close containers until one has another item.
            while stack:
                pos = self.ws(pos)
                frame = stack[-1]
                if self.at(pos) == ",":
                    pos = self.ws(pos + 1)
                    if frame[0] == "obj":
                        path, pos = self.key(pos, frame[1], frame[3])
                    else:
                        frame[2] += 1
                        path = item(frame[1], frame[2])
                    break
                stack.pop()
                pos += 1
            else:
                return


def json_positions(name: str, text: str) -> Positions:
    """`{dotted path: "name:line:col"}` of every value (keys in `.keys_at`); never raises."""
    scanner = _Scanner(name, text)
    scanner.run()
    return scanner.positions


def _syntax_error(name: str, text: str, exc: json.JSONDecodeError) -> ConfigError:
    # `msg` is json's fixed text ("Expecting ',' delimiter"), never the document's.
    found = unclosed(text, exc.pos, strings=JSON_STRINGS)
    if found is not None and found[0] < exc.pos and not exc.msg.startswith("Unterminated string"):
        line, col = line_col(text, found[0])
        msg = f"JSON syntax error: {what(found[1])} (at {exc.lineno}:{exc.colno}: {exc.msg})"
        return ConfigError([Issue("", msg, f"{name}:{line}:{col}")])
    return ConfigError([Issue("", f"JSON syntax error: {exc.msg}", f"{name}:{exc.lineno}:{exc.colno}")])


class JsonFile(FileSource):
    """A JSON file layer (same arguments as `YamlFile`). Duplicate keys are an error."""

    format = "JSON"
    deep_text_check = False  # json stops at the recursion limit within a millisecond

    def _parse(self, text: str) -> Any:
        try:
            tree = json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as exc:
            raise _syntax_error(self._display, text, exc) from None
        except _Duplicate:
            scanner = _Scanner(self._display, text)
            scanner.run()
            path, where = scanner.duplicate or ("", self._display)
            raise ConfigError([Issue(path, "duplicate key: each key may appear once in an object", where)]) from None
        # json decodes a lone "\ud800" escape into a string no UTF-8 writer can encode: the
        # structurer refuses it at its path ("not valid text"), like every other value rule.
        return tree

    def _positions(self, name: str, text: str) -> Mapping[str, str]:
        return json_positions(name, text)

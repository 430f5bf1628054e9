"""JSON file layer: the tree from the C `json` parser, positions from a small scanner."""

from __future__ import annotations

import bisect
import json
import json.decoder
import re
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import ConfigError, Issue
from .._paths import item, join
from ._file import FileSource

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


class _Scanner:
    """Walks valid JSON text once, recording where each value starts.

    Iterative (an explicit stack), so depth is no concern; it runs only after `json`
    accepted the text, so it does not re-check the grammar.
    """

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self.lines = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self.positions: dict[str, str] = {}
        self.duplicate: tuple[str, str] | None = None  # (path, origin) of the first repeat

    def where(self, pos: int) -> str:
        line = bisect.bisect_right(self.lines, pos) - 1
        return f"{self.name}:{line + 1}:{pos - self.lines[line] + 1}"

    def ws(self, pos: int) -> int:
        m = _WS.match(self.text, pos)
        return m.end() if m else pos

    def key(self, pos: int, path: str, seen: set[str]) -> tuple[str, int]:
        """Read `"key" :` at `pos`; returns the value's path and where the value starts."""
        key, end = scanstring(self.text, pos + 1)
        sub = join(path, key)
        if key in seen and self.duplicate is None:
            self.duplicate = (sub, self.where(pos))
        seen.add(key)
        end = self.ws(end)  # at ':'
        return sub, self.ws(end + 1)

    def run(self) -> None:
        text = self.text
        # Frames: [kind, path, item count, keys seen]
        stack: list[list[Any]] = []
        pos, path = self.ws(0), ""
        while True:
            # A value starts at `pos`.
            if path:
                self.positions[path] = self.where(pos)
            c = text[pos]
            if c == "{":
                pos = self.ws(pos + 1)
                if text[pos] != "}":
                    seen: set[str] = set()
                    stack.append(["obj", path, 0, seen])
                    path, pos = self.key(pos, path, seen)
                    continue
                pos += 1
            elif c == "[":
                pos = self.ws(pos + 1)
                if text[pos] != "]":
                    stack.append(["arr", path, 0, None])
                    path = item(path, 0)
                    continue
                pos += 1
            elif c == '"':
                _, pos = scanstring(text, pos + 1)
            else:
                m = _SCALAR.match(text, pos)
                pos = m.end() if m else pos + 1
            # The value ended: close containers until one has another item.
            while stack:
                pos = self.ws(pos)
                frame = stack[-1]
                if text[pos] == ",":
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


def json_positions(name: str, text: str) -> dict[str, str]:
    """`{dotted path: "name:line:col"}` of every value in valid JSON text."""
    scanner = _Scanner(name, text)
    scanner.run()
    return scanner.positions


class JsonFile(FileSource):
    """A JSON file layer (same arguments as `YamlFile`). Duplicate keys are an error."""

    format = "JSON"

    def _parse(self, text: str) -> Any:
        try:
            return json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as exc:
            where = f"{self._display}:{exc.lineno}:{exc.colno}"
            raise ConfigError([Issue("", f"JSON syntax error: {exc.msg}", where)]) from None
        except _Duplicate:
            scanner = _Scanner(self._display, text)
            scanner.run()
            path, where = scanner.duplicate or ("", self._display)
            raise ConfigError([Issue(path, "duplicate key: each key may appear once in an object", where)]) from None

    def _positions(self, name: str, text: str) -> Mapping[str, str]:
        return json_positions(name, text)

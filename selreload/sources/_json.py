"""JSON file layer: the tree from the C `json` parser, positions from a small scanner."""

from __future__ import annotations

import bisect
import contextlib
import json
import json.decoder
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

from .._errors import ConfigError, Issue
from .._guard import MAX_DEPTH, MAX_NODES, counted_within, entry_size
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
        return _ws_match(self.text, pos).end()

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


# What `json.loads(text, object_pairs_hook=_no_duplicates)` parses with, one value at a
# time: `scan_once(text, offset) -> (value, end)`, the C scanner (typeshed does not declare it).
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates)
_scan_once: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]

_Entry = tuple["str | None", Any, int, int, "dict[str, _Entry] | None"]
"""A remembered value: its text (None for an object cut into its entries), the value, its
nodes and levels (`measure`), and its entries by key once it is an object worth cutting
(`{}` until it is next read: a large object parsed in one call)."""

_FAILED: Final = (ValueError, StopIteration, IndexError, RecursionError, _Duplicate)
"""What the cut meets on text it cannot follow: the whole parse then says what is wrong."""


class Entries:
    """The entries of the last JSON document one source parsed, by their text: the
    top-level ones, and inside each large entry whose value is an object, that object's.

    The JSON analogue of `_ryml.Sections`. Each key of an object is read in turn; where
    its value's text is the text the same key held last time (`str.startswith` at its
    offset, in C), and is followed by `,` or `}`, the value is the very object parsed then;
    any other value is parsed by the C scanner `json.loads` uses, one value at a time. A
    value's text is all there is to it (JSON is context-free), and that text was checked
    whole when it was read, duplicate keys included. So a one-leaf change to a 10,000-leaf
    document parses one section, and the structurer, digests and diff skip the rest by
    identity. An object cut into its entries whose entries are all the ones it had, in
    the same order, is the very object it was too.

    Anything this walk cannot follow (a syntax error, a duplicate key, a top level that
    is not an object, text after it) makes `tree()` return None: the caller parses the
    document whole, as before, and that parse says what is wrong and where.

    A key is read in Python, about 3 us each: an object is cut only when its last text
    averaged `min_entry` characters or more per key (a whole parse takes ~11 us per 1,000
    characters here), so a change to every entry costs what the whole parse and its
    budget walk do (a whole reload, 1,000 and 10,000 leaves: 0.94-1.03x), and a flat
    document of many short values keeps the one C call it had. Only the last
    document's entries are kept, and each character of its text in one of them at most
    (an object cut into entries keeps theirs, not its own): about the size of the text,
    however deep the cut goes. Each returned tree is new where it changed, and no
    remembered value is ever modified.
    """

    __slots__ = ("_root", "last", "max_nodes", "min_entry", "min_size")

    def __init__(self, *, max_nodes: int = MAX_NODES, min_size: int = 2048, min_entry: int = 1024) -> None:
        self.max_nodes = max_nodes
        self.min_size = min_size  # smaller documents and objects are parsed whole: one call is cheaper
        self.min_entry = min_entry
        # The last document as an entry cut into its own, or None: parse the next one whole.
        self._root: _Entry | None = None
        # The last tree returned, with its nodes and levels (one tuple, replaced whole).
        self.last: tuple[dict[str, Any], int, int] | None = None

    def within(self, tree: Any) -> bool:
        """Whether `tree` is the last one returned and within the node and depth budgets
        (`_guard.check_tree`'s count, summed over the entries, each counted once)."""
        return counted_within(self.last, tree, self.max_nodes)

    def tree(self, text: str) -> dict[str, Any] | None:
        """The object `text` holds, from the last document's entries where they are
        unchanged; None when the document must be parsed whole (then `parsed_whole`)."""
        root = self._root
        if root is None or len(text) < self.min_size:
            self._root = self.last = None
            return None
        try:
            pos = _ws_match(text, 0).end()
            if text[pos] != "{":
                raise ValueError
            cut = self._cut(text, pos, root, 1)
            if cut is None or _ws_match(text, cut[1]).end() != len(text):
                raise ValueError  # an empty object, or text after it
        except _FAILED:
            # Its entries stay: the document that mends this one may reuse them.
            self.last = None
            return None
        entry = cut[0]
        worth = entry[4] is not None and self._worth_cutting(len(text), len(entry[4]))
        self._root = entry if worth else None
        self.last = (entry[1], entry[2], entry[3])
        return entry[1]  # type: ignore[no-any-return]

    def parsed_whole(self, text: str, tree: Any) -> None:
        """After a whole parse: cut the next document when this one's shape is worth it."""
        self.last = None
        if type(tree) is dict and self._worth_cutting(len(text), len(tree)):
            if self._root is None:  # else keep the entries: the next one may reuse them
                self._root = (None, tree, 0, 0, {})
        else:
            self._root = None

    def _worth_cutting(self, size: int, keys: int) -> bool:
        return size >= self.min_size and keys > 0 and size >= self.min_entry * keys

    def _cut(self, text: str, pos: int, old: _Entry, depth: int) -> tuple[_Entry, int] | None:
        """The object whose `{` is at `pos`, read entry by entry against `old`'s entries:
        its entry and the offset after its `}`; None for an empty one. Raises one of
        `_FAILED`."""
        known: dict[str, _Entry] = old[4] or {}
        ws, starts = _ws_match, text.startswith
        out: dict[str, Any] = {}
        found: dict[str, _Entry] = {}
        nodes, levels, same = 1, 0, True
        pos = ws(text, pos + 1).end()
        if text[pos] != '"':
            return None
        while True:
            key, pos = scanstring(text, pos + 1)
            if key in out:
                raise _Duplicate  # the whole parse places it
            pos = ws(text, pos).end()
            if text[pos] != ":":
                raise ValueError
            start = ws(text, pos + 1).end()
            was = entry = known.get(key)
            if entry is not None:
                if entry[0] is not None and starts(entry[0], start):
                    after = ws(text, start + len(entry[0])).end()
                    if text[after] not in ",}":
                        entry = None  # a longer number, or worse: read it anew
                else:
                    entry = None
            if entry is None:
                entry, after = self._value(text, start, was, depth)
            same = same and entry is was
            out[key] = entry[1]
            found[key] = entry
            nodes += entry[2]
            levels = max(levels, entry[3])
            if text[after] == "}":
                break
            if text[after] != ",":
                raise ValueError
            pos = ws(text, after + 1).end()
            if text[pos] != '"':
                raise ValueError
        end = after + 1
        if same and list(found) == list(known):
            return old, end  # every entry as it was, in the same order: the object it was
        return (None, out, nodes, levels + 1, found), end

    def _value(self, text: str, start: int, old: _Entry | None, depth: int) -> tuple[_Entry, int]:
        """A value that changed: cut into its entries when it was an object worth cutting
        and still starts as one, else parsed whole. Returns its entry and the offset of
        the `,` or `}` after it."""
        if old is not None and old[4] is not None and text[start] == "{" and depth < MAX_DEPTH - 1:
            cut = self._cut(text, start, old, depth + 1)
            if cut is not None:
                entry, end = cut
                if entry[0] is None and not self._worth_cutting(end - start, len(entry[4] or ())):
                    entry = (text[start:end], *entry[1:4], None)  # no longer worth it: by its text
                return entry, _ws_match(text, end).end()
        value, end = _scan_once(text, start)
        size = entry_size(value, self.max_nodes)
        # A large object is cut when it next changes: its entries are remembered then.
        below: dict[str, _Entry] | None = (
            {} if type(value) is dict and self._worth_cutting(end - start, len(value)) else None
        )
        return (text[start:end], value, *size, below), _ws_match(text, end).end()


# The whitespace at an offset: `[ \t\n\r]*` matches everywhere, if only emptily.
_ws_match = cast("Callable[[str, int], re.Match[str]]", _WS.match)


class JsonFile(FileSource):
    """A JSON file layer (same arguments as `YamlFile`). Duplicate keys are an error."""

    format = "JSON"
    deep_text_check = False  # json stops at the recursion limit within a millisecond
    _entries: Entries | None = None

    def _parse(self, text: str) -> Any:
        if self._entries is None:
            # Made on the first parse, once FileSource.__init__ has set max_nodes.
            self._entries = Entries(max_nodes=self.max_nodes)
        tree = self._entries.tree(text)
        if tree is not None:
            return tree
        tree = self._parse_whole(text)
        self._entries.parsed_whole(text, tree)
        return tree

    def _within(self, tree: Any) -> bool:
        return self._entries is not None and self._entries.within(tree)

    def _parse_whole(self, text: str) -> Any:
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

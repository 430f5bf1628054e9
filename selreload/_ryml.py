"""The YAML fast path: rapidyaml parses, its tree comes back through JSON, checked to agree
with ruamel's YAML 1.2 reading; `None` whenever it cannot be sure, and ruamel decides.

Measured here (10,000-leaf file, 126 kB): ruamel safe + C 177 ms, this path ~5 ms (the
text checks 0.5 ms, rapidyaml's parse and JSON emitter 1.6 ms, `json` and the checks on its
strings 2.5 ms). A Python walk of rapidyaml's tree through its SWIG calls took 45 ms, and a
`json` object hook checking each pair 8 ms: the JSON detour, checked by regex, is the way.

rapidyaml does not resolve scalars (`~`, `0o17`, `.inf` and dates stay text), keeps tags and
aliases only as text, and takes duplicate keys. So this path is only a first try:

- text that may hold what rapidyaml reads otherwise (tags, anchors, aliases, directives or
  several documents, tabs, CR, characters YAML forbids, escapes in double quotes) is left
  to ruamel before rapidyaml sees it;
- in rapidyaml's JSON, any key, and any string value that ruamel's 1.2 resolver would read
  as something else if it was plain (a date, `~`, `0x1F`, `<<`), sends the document to
  ruamel (a plain `12`, `true` or empty value is emitted unquoted, so a string `"12"` was
  quoted in the YAML and stays a string);
- a duplicate key, `NaN`/`Infinity` tokens, an int over Python's digit limit, a root that
  is not a mapping, or any rapidyaml error (syntax errors are placed by ruamel) too.

`tests/test_yaml_fast.py` checks by hypothesis that the result equals ruamel's, or is `None`.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
import threading
from collections.abc import Iterable
from typing import Any, Final, TypeAlias

from ruamel.yaml.resolver import implicit_resolvers

from ._guard import MAX_DEPTH, MAX_NODES, counted_within, entry_size

_STR: Final = "tag:yaml.org,2002:str"


class _Unsure(Exception):
    """The fast path cannot vouch for this document."""


# Text rapidyaml reads differently from ruamel, or that needs ruamel's errors. False alarms
# only cost the slow path: an `&` or `*` after a space in a plain value, a `%` line. Each
# test is a plain substring search first: one alternation over the whole text cost 12 ms
# at 126 kB, more than rapidyaml's parse.
_NODE_START = re.compile(r"(?:^|[\s\[{,:])[&*!@`%]", re.MULTILINE)  # anchor, alias, tag, reserved
_MARKER = re.compile(r"^(?:---|\.\.\.|%)", re.MULTILINE)  # directives, several documents
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # in ASCII text
# Not printable, or a line break to libyaml (NEL, U+2028, U+2029).
_NOT_PRINTABLE = re.compile(r"[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Where libyaml (ruamel's C scanner) and rapidyaml part in flow context: libyaml refuses a
# `:` inside a plain scalar there (`[12:30]`), rapidyaml takes it; a comment after a bracket
# on its line (`{x: a #b}`) hides the closer from libyaml, not from rapidyaml; and they read
# a `?` there apart (`[?1]` is `[{1: null}]` to libyaml, `["?1"]` to rapidyaml).
# The bracket is looked for from each line's start only: matched from every bracket, a
# line of 64,000 `[]` took 4.8 s (each bracket scanned the rest of its line).
_FLOW_COLON = re.compile(r":[^\s]|^[^\n\[{]*[\[{][^\n]*#|\?", re.MULTILINE)
# A value starting with a closer or a comma (`a: }`): libyaml refuses it, rapidyaml takes it
# as text. Also flags a multi-line flow collection's closing line (a false alarm).
_CLOSER = re.compile(r"(?:^[ ]*|[:-][ ]+)[\]},]", re.MULTILINE)
# A block scalar whose header is not `|` or `>` with at most an indentation and a chomping
# indicator, then a comment or the line's end (`a: >1:`): libyaml refuses it, rapidyaml
# took it as an empty string (found by the property test).
_BLOCK_HEADER = re.compile(r"(?:^[ ]*|[:?-][ ]+)[|>](?!(?:[1-9][+-]?|[+-][1-9]?)?(?:[ ]+#[^\n]*|[ ]*)$)", re.MULTILINE)


# libyaml refuses an implicit key of more than 1024 characters ("could not find expected
# ':'"); rapidyaml takes it (found by `fuzz_long`).
_KEY_LIMIT: Final = 1024


# `.5e3` (a dot first, an exponent without a sign): rapidyaml writes `0.5e3`, a float, where
# ruamel's YAML 1.2 resolver reads a string (its dot-first form wants `e+3`).
# Searched from its literal `.` (a lookbehind first made the search 4x slower); what
# precedes a hit, rare in a config, is checked after.
_DOT_EXPONENT = re.compile(r"\.[0-9_]+[eE][0-9]")


def _dot_exponent(text: str) -> bool:
    for m in _DOT_EXPONENT.finditer(text):
        start = m.start()
        if start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "_"):
            return True
    return False


def _unsure_text(text: str) -> bool:
    if "\t" in text or "\r" in text or ('"' in text and "\\" in text):
        return True  # tabs, CR line ends, escapes in double quotes
    if text.find("\ufeff", 1) != -1:
        return True  # a BOM past the start: libyaml refuses one at a line start, rapidyaml reads a key
    if any(c in text for c in "&*!@`%") and _NODE_START.search(text):
        return True
    if ("---" in text or "..." in text or "%" in text) and _MARKER.search(text):
        return True
    if (_CONTROL if text.isascii() else _NOT_PRINTABLE).search(text):
        return True
    if "." in text and _dot_exponent(text):
        return True
    if ("]" in text or "}" in text or "," in text) and _CLOSER.search(text):
        return True
    if ("|" in text or ">" in text) and _BLOCK_HEADER.search(text):
        return True
    if ("[" in text or "{" in text) and _FLOW_COLON.search(text) is not None:
        return True
    # No key longer than libyaml's limit fits on a shorter line. A split is the fastest
    # check here: 0.5 ms for 300 kB.
    return len(text) > _KEY_LIMIT and max(map(len, text.split("\n"))) > _KEY_LIMIT


# ruamel's implicit resolvers for YAML 1.2, by first character, in its order.
_RESOLVERS: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
for _versions, _tag, _regexp, _first in implicit_resolvers:
    if (1, 2) in _versions:
        for _ch in _first:
            _RESOLVERS.setdefault(_ch, []).append((_tag, re.compile(_regexp.pattern, _regexp.flags)))

# A JSON string in rapidyaml's output that looks like one of these was quoted in the YAML:
# rapidyaml emits a plain `12`, `-0.5e3`, `true`, `null` or empty value unquoted. Not a
# plain `0e5` (or `0E-3`): rapidyaml quotes that one, which YAML 1.2 reads as a float,
# so a quoted `"0e5"` in the output is unsure and ruamel decides.
_JSON_TOKEN = re.compile(r"(?!0[eE])-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null|")

# In rapidyaml's JSON without a backslash, every `"` opens or closes a string: these are the
# strings ruamel's resolvers may read as something else (by their first characters, above),
# with the `:` that makes one a key.
_RISKY = re.compile(r'"([-+.0-9<=!&*~][^"]*|true|True|TRUE|false|False|FALSE|null|Null|NULL|)"(:?)')
_RISKY_FIRST: Final = frozenset("-+.0123456789<=!&*~tTfFnN")


def resolved_tag(value: str) -> str:
    """The tag ruamel gives `value` as a plain YAML 1.2 scalar (`tag:yaml.org,2002:int`)."""
    for tag, regexp in _RESOLVERS.get(value[:1], ()):
        if regexp.match(value):
            return tag
    return _STR


_checked: dict[str, bool] = {}  # key text -> plain text; keys repeat across documents


def _plain_str(value: str) -> bool:
    """Whether `value` reads as a string in ruamel, however it was written."""
    if value[:1] not in _RESOLVERS:
        return True
    known = _checked.get(value)
    if known is None:
        known = resolved_tag(value) == _STR
        if len(_checked) < 4096:
            _checked[value] = known
    return known


def _check_items(items: list[Any]) -> None:
    for v in items:
        kind = type(v)
        if kind is str:
            if not _plain_str(v) and not _JSON_TOKEN.fullmatch(v):
                raise _Unsure
        elif kind is list:
            _check_items(v)


def _mapping(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Unsure  # a duplicate key: ruamel says where
    for k, v in pairs:
        if not _plain_str(k):
            raise _Unsure  # `1:`, `~:`, `<<:` are not string keys in ruamel
        kind = type(v)
        if kind is str:
            if not _plain_str(v) and not _JSON_TOKEN.fullmatch(v):
                raise _Unsure
        elif kind is list:
            _check_items(v)
    return out


def _constant(name: str) -> Any:
    raise _Unsure  # NaN, Infinity: not JSON rapidyaml means to write


_decoder = json.JSONDecoder(object_pairs_hook=_mapping, parse_constant=_constant)


_KEEP: Final = 256 * 1024  # the output buffer (and the tree's text arena) kept between parses, at most
_KEEP_NODES: Final = 16384  # the nodes of the tree kept between parses, at most
_SMALL: Final = 4096  # bytes: a document parsed in the small tree


class _Parser:
    """rapidyaml's parse, emitted as JSON, under a lock (one output buffer, reused).

    rapidyaml's default error handler writes each error (with a character of the text)
    to C's `stderr` before it raises; its Python binding cannot change the handler. For the
    parse, C's `stderr` points at /dev/null: Python's own `sys.stderr` writes to the file
    descriptor, not through C's `FILE*`, so other threads' output is untouched."""

    def __init__(self, ryml: Any) -> None:
        self._ryml = ryml
        self._lock = threading.Lock()
        self._buf = bytearray(4096)
        # Two rapidyaml trees, cleared and reused (~1 us less a parse): one for small
        # documents (a top-level entry), since clearing costs a tree's capacity (70 us
        # for one left at 10,000 leaves, against the 10 us a small entry's parse takes).
        self._trees: list[Any] = [None, None]
        self._slot: Any = None
        self._null: int | None = None
        if sys.platform == "linux" and _glibc():
            try:
                libc = ctypes.CDLL(None)
                fopen = libc.fopen
                fopen.restype, fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
                null = fopen(b"/dev/null", b"w")
                if null:
                    self._slot, self._null = ctypes.c_void_p.in_dll(libc, "stderr"), null
            except (OSError, ValueError, AttributeError):
                self._slot = None

    @property
    def available(self) -> bool:
        return self._slot is not None

    def parse_json(self, data: bytes) -> str:
        ryml = self._ryml
        with self._lock:
            slot = self._slot
            saved = slot.value
            slot.value = self._null
            try:
                which = 0 if len(data) < _SMALL else 1
                tree, self._trees[which] = self._trees[which], None  # not kept if the parse raises
                if tree is None:
                    tree = ryml.Tree()
                else:
                    tree.clear()
                    tree.clear_arena()
                ryml.parse_in_arena(data, tree=tree)
                # Into a buffer of ours: `ryml.emit_json` leaks its malloc'd output
                # (measured: +5.4 MiB RSS over 50,000 parses of a 6-line file; none this way).
                root, buf = tree.root_id(), self._buf
                failed, size = ryml.emit_json_to_substr(tree, root, buf)
                if failed:
                    buf = bytearray(size)
                    failed, size = ryml.emit_json_to_substr(tree, root, buf)
                    if size <= _KEEP:
                        self._buf = buf
                if tree.arena_capacity() <= _KEEP and tree.capacity() <= _KEEP_NODES:
                    self._trees[which] = tree  # a large document's arena and nodes go with its tree
            finally:
                slot.value = saved
            return str(memoryview(buf)[:size], "utf-8")


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError, AttributeError):
        return False


_parser: _Parser | None = None
_tried = False


def parser() -> _Parser | None:
    """The fast path's parser, set up on first use (importing rapidyaml costs ~10 ms, paid
    by the first YAML parse, not by `import selreload`); `None` where it cannot run."""
    global _parser, _tried
    if not _tried:
        _tried = True
        try:
            import ryml
        except ImportError:  # no wheel for this platform: ruamel reads everything
            return None
        made = _Parser(ryml)
        # `_RISKY` names the first characters ruamel's 1.2 resolvers start from (and, for
        # letters, their only words): a ruamel that resolves more turns the fast path off.
        if made.available and set(_RESOLVERS) - {""} <= _RISKY_FIRST:
            _parser = made
    return _parser


"""Whether the fast path runs here (rapidyaml installed, and its errors can be silenced)."""


def _decode(emitted: str) -> Any:
    """rapidyaml's JSON as ruamel's tree, or `_Unsure`."""
    if "\\" in emitted:
        return _decoder.decode(emitted)  # escapes: check every string as it is built
    for m in _RISKY.finditer(emitted):
        content = m[1]
        if resolved_tag(content) != _STR and (m[2] or not _JSON_TOKEN.fullmatch(content)):
            raise _Unsure
    counting = _counting
    counting.keys = 0
    tree = counting.decoder.decode(emitted)
    # Every key ends in `":` here; fewer keys in the dicts means a duplicate key.
    if counting.keys != emitted.count('":'):
        raise _Unsure
    return tree


class _Counting(threading.local):
    """A JSON decoder that counts the keys of the mappings it builds, one per thread
    (building a decoder per document cost ~2 us, as much as parsing a 7-line one)."""

    def __init__(self) -> None:
        self.keys = 0
        self.decoder = json.JSONDecoder(object_hook=self._count, parse_constant=_constant)

    def _count(self, mapping: dict[str, Any]) -> dict[str, Any]:
        self.keys += len(mapping)
        return mapping


_counting = _Counting()


def fast_tree(text: str, sections: Sections | None = None) -> dict[str, Any] | None:
    """The tree of `text` exactly as ruamel's safe loader builds it, or `None` when this
    path cannot vouch for it (the caller then asks ruamel).

    With `sections` (one per source), a document's top-level entries whose text is the
    same as in the last document parsed are not parsed again (`Sections`).
    """
    fast = _parser if _tried else parser()
    if fast is None:
        return None
    if sections is not None and len(text) >= sections.min_size:
        try:
            tree = sections.tree(text, fast)
        except Exception:  # noqa: BLE001 - the cut is only a shortcut: the whole parse decides
            tree = None
        if tree is not None:
            return tree
    return _whole(text, fast)


def _whole(text: str, fast: _Parser) -> dict[str, Any] | None:
    if _unsure_text(text):
        return None
    try:
        tree = _decode(fast.parse_json(text.encode("utf-8")))
    except Exception:  # noqa: BLE001 - _Unsure, rapidyaml's ExceptionParse, a huge int: ruamel decides
        return None
    return tree if type(tree) is dict else None


# An entry of a block mapping starts a line, at the mapping's indentation, with its key:
# what is not an entry's first line is indented more, starts with a `#` or a `- ` (a
# sequence may sit at its key's indentation), or is blank.
# The cut is after the newline, which stays with the entry it ends: a block scalar's value
# ends with that newline (`|`, `>`), and with the blank lines after it (`|+`).
_ENTRY_START = re.compile(r"(?<=\n)(?=[^ \n#-]|-[^ \n])")
# The plain keys taken as one entry's start; anything else at a line start (`---`, `? `,
# a quoted or flow key, `-1:`) leaves the document to the whole parse.
_KEY: Final = r"([A-Za-z_][A-Za-z0-9_-]*):"
_ENTRY_KEY = re.compile(_KEY + r"(?:[ ]|\n|$)")
_BLANK_OR_COMMENT = re.compile(r"(?:[ ]*(?:#[^\n]*)?(?:\n|$))*")
# An entry whose value is a block mapping below its key: `key:`, maybe a comment (after a
# space: `key:#x` is no key, but text), then the indentation of the first line that holds
# more than a comment.
_MAPPING_BELOW = re.compile(_KEY + r"(?:[ ]+#[^\n]*|[ ]*)\n(?:[ ]*(?:#[^\n]*)?\n)*( +)[^ \n#-]")


_PATTERNS: dict[tuple[str, int], re.Pattern[str]] = {}


def _pattern(kind: str, indent: int) -> re.Pattern[str]:
    """`start`: the cut before each entry of a mapping at `indent`. `shallower`: a line
    indented less than `indent` that holds more than a comment (the mapping ends there,
    and a cut of the text below its key would not)."""
    found = _PATTERNS.get((kind, indent))
    if found is None:
        if kind == "start":
            found = re.compile(rf"(?<=\n)(?= {{{indent}}}(?:[^ \n#-]|-[^ \n]))")
        else:
            # From a newline only: the text below a key starts at its first entry's line
            # (and a leading alternation made each search 30x slower: 1 ms at 126 kB).
            found = re.compile(rf"\n {{0,{indent - 1}}}[^ \n#]")
        if len(_PATTERNS) < 512:  # a document can hold as many indentations as it likes
            _PATTERNS[kind, indent] = found
    return found


_Entry: TypeAlias = tuple[str, Any, int, int]
"""An entry: its key, its value, and its nodes and levels (`_guard.measure`)."""


class Sections:
    """The entries of the last document one source parsed, by their text: the top-level
    ones, and inside each large entry whose value is a block mapping, that mapping's.

    A mapping is cut before each line that starts, at its indentation, with a plain key
    (`name:`); every other line belongs to the entry above it. That is where libyaml
    starts a new entry: every block construct of an entry is indented more than its key,
    so a line at the key's indentation ends it (a mapping holding a line indented less
    than its keys is not cut). An entry whose text did not change since the last document
    gets back the very tree it had (trees are never modified: layers are reused the same
    way), so the structurer, digests and diff skip it by identity.

    The entries that are new are parsed together, as one document of their texts (one
    call, checked exactly as a whole document is; a nested mapping's entries under one
    key, at their own indentation), whose keys must be theirs, one each, in order: what
    runs past an entry's end (a quote or a bracket left open) breaks that line-up, or the
    parse, and the whole document is then parsed as before. A mapping mostly new (a first
    parse, every section changed) is parsed whole; its entries are remembered when its
    keys line up with the cut. A key in two entries leaves the document to ruamel, which
    says where.

    Only the last document's entries are kept: memory is about twice the document's text.
    """

    __slots__ = ("_children", "_depth", "_start", "entries", "indent", "last", "max_nodes", "min_size")

    def __init__(self, *, max_nodes: int = MAX_NODES, min_size: int = 2048, indent: int = 0, depth: int = 1) -> None:
        self.min_size = min_size  # smaller documents and entries are parsed whole: one call is cheaper
        self.max_nodes = max_nodes
        self.indent = indent  # of this mapping's keys
        self._depth = depth  # of this mapping in the document: cut no deeper than the budget
        self._start = _ENTRY_START if not indent else _pattern("start", indent)
        # piece -> (key, value, its nodes, its levels): the budgets' counts, per entry
        self.entries: dict[str, _Entry] = {}
        # The last tree returned, with its nodes and levels: one tuple, replaced whole
        # (a plan on another thread may parse at the same time).
        self.last: tuple[dict[str, Any], int, int] | None = None
        self._children: dict[str, Sections] = {}  # key -> the mapping below a large entry

    def within(self, tree: Any) -> bool:
        """Whether `tree` is the last one returned and within the node and depth budgets
        (`_guard.check_tree`'s count, summed over the entries, each counted once)."""
        return counted_within(self.last, tree, self.max_nodes)

    def tree(self, text: str, fast: _Parser) -> dict[str, Any] | None:
        """The mapping `text` holds (a document, or the lines below a key), or None."""
        pieces = self._pieces(text)
        if pieces is None:
            return None
        known = self.entries
        new = [piece for piece in pieces if piece not in known]
        deeper: dict[str, _Entry] = {}
        for piece in new:
            entry = self._deeper(piece, fast)
            if entry is not None:
                deeper[piece] = entry
        rest = [piece for piece in new if piece not in deeper] if deeper else new
        if 2 * len(rest) > len(pieces) or (not deeper and len(pieces) < 2):
            whole = self._parsed(text, fast)
            if whole is not None:
                entries = self._lined_up(pieces, whole)
                self.entries = entries or {}
                if entries is not None:
                    self._seed(entries, fast)
                    self._measured(whole, entries.values())
                self._prune(whole)
            return whole
        if rest:
            parsed = self._parsed("".join(rest), fast)
            added = None if parsed is None else self._lined_up(rest, parsed)
            if added is None:
                return None
            known = {**known, **added}
        if deeper:
            known = {**known, **deeper}
        found: dict[str, _Entry] = {}
        out: dict[str, Any] = {}
        for piece in pieces:
            entry = found[piece] = known[piece]
            if entry[0] in out:
                return None  # a duplicate key: ruamel places it
            out[entry[0]] = entry[1]
        self.entries = found
        self._prune(out)
        self._measured(out, found.values())
        return out

    def _pieces(self, text: str) -> list[str] | None:
        """The entries' texts, or None when `text` is not a mapping this cut can trust."""
        pieces = self._start.split(text)
        first = pieces[0]
        if first not in self.entries and _ENTRY_KEY.match(first, self.indent) is None:
            if not _BLANK_OR_COMMENT.fullmatch(first) or _unsure_text(first):
                return None  # content before the first entry: not a plain mapping
            del pieces[0]
        if not pieces or (self.indent and _pattern("shallower", self.indent).search(text)):
            return None
        return pieces

    def _parsed(self, text: str, fast: _Parser) -> dict[str, Any] | None:
        """The mapping of entries' text: a document at the top, else under one key."""
        if not self.indent:
            return _whole(text, fast)
        tree = _whole("k:\n" + text, fast)
        value = None if tree is None else tree.get("k")
        return value if type(value) is dict else None

    def _prune(self, keys: dict[str, Any]) -> None:
        """Forget the mappings below keys the last tree no longer holds."""
        if self._children:  # a copy first: a plan on another thread may add one meanwhile
            self._children = {k: c for k, c in dict(self._children).items() if k in keys}

    def _below(self, piece: str) -> re.Match[str] | None:
        """Where the block mapping below a large entry's key starts (`m[1]` the key, `m[2]`
        the mapping's indentation), within the depth budget; else None."""
        if len(piece) < self.min_size or self._depth >= MAX_DEPTH:
            return None
        m = _MAPPING_BELOW.match(piece, self.indent)
        return m if m is not None and len(m[2]) > self.indent else None

    def _deeper(self, piece: str, fast: _Parser) -> _Entry | None:
        """A large entry whose value is a block mapping, from that mapping's own entries."""
        m = self._below(piece)
        if m is None or not _plain_str(m[1]) or _unsure_text(piece[: m.start(2)]):
            return None  # `true:` is no string key to ruamel
        child = self._children.get(m[1])
        if child is None or child.indent != len(m[2]):
            child = self._children[m[1]] = self._child(len(m[2]))
        value = child.tree(piece[m.start(2) :], fast)
        last = child.last
        if value is None or last is None or last[0] is not value:
            return None
        return m[1], value, last[1], last[2]

    def _child(self, indent: int) -> Sections:
        return Sections(max_nodes=self.max_nodes, min_size=self.min_size, indent=indent, depth=self._depth + 1)

    def _seed(self, entries: dict[str, _Entry], fast: _Parser) -> None:
        """Remember the entries below each large entry of a mapping parsed whole."""
        for piece, (key, value, _, _) in entries.items():
            m = self._below(piece) if type(value) is dict else None
            if m is None:
                continue
            child = self._child(len(m[2]))
            pieces = child._pieces(piece[m.start(2) :])
            below = None if pieces is None else child._lined_up(pieces, value)
            if below is not None:
                child.entries = below
                child._seed(below, fast)
                self._children[key] = child

    def _measured(self, tree: dict[str, Any], entries: Iterable[_Entry]) -> None:
        nodes, levels = 1, 0
        for entry in entries:
            nodes += entry[2]
            levels = max(levels, entry[3])
        self.last = (tree, nodes, levels + 1)

    def _lined_up(self, pieces: list[str], tree: dict[str, Any]) -> dict[str, _Entry] | None:
        """`{piece: entry}` when the tree's keys are the pieces' keys, one each, in order."""
        if len(tree) != len(pieces):
            return None
        out: dict[str, _Entry] = {}
        for piece, (key, value) in zip(pieces, tree.items(), strict=True):
            m = _ENTRY_KEY.match(piece, self.indent)
            if m is None or m[1] != key:
                return None
            out[piece] = (key, value, *entry_size(value, self.max_nodes))
        return out

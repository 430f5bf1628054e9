"""Documents from bytes to a checked `Layer`, and YAML with positions: for files, etcd and policy files."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError, DuplicateKeyError, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from ._errors import ConfigError, Issue
from ._guard import MAX_NODES, check_tree, prescan, too_many_nodes
from ._paths import item, join
from ._ryml import Sections, fast_tree
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


def _parser_failed(format: str, exc: BaseException) -> str:
    """A message for an exception a parser raised that is not a syntax error: selreload's
    words, never the exception's text (a `ValueError` from `int()` quotes the value)."""
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return f"cannot parse {format}: a number has more than {sys.get_int_max_str_digits():,} digits"
    if isinstance(exc, MemoryError):
        return f"cannot parse {format}: out of memory"
    return f"cannot parse {format}: the parser failed ({type(exc).__name__})"


def document_layer(
    name: str,
    data: bytes,
    digest: str,
    *,
    format: str,
    parse: Callable[[str], Any],
    positions: Callable[[str, str], Mapping[str, str]],
    max_nodes: int = MAX_NODES,
    revision: int | None = None,
    deep_text_check: bool = True,
    within: Callable[[Any], bool] | None = None,
) -> Layer:
    """Check and parse the bytes of one document (any format) into a `Layer` named `name`.

    This is the one boundary between parsers and selreload: whatever a parser, a YAML
    constructor or a position scanner raises becomes an `Issue` in selreload's words.

    Args:
        format: the format's name in messages (`YAML`).
        parse: text -> tree, fast; raises `ConfigError` (with line:col) for a syntax error.
        positions: `(name, text) -> {dotted path: "name:line:col"}`, called lazily.
        max_nodes: the budget of the expanded tree.
        revision: the store revision the bytes were read at (etcd), if any.
        deep_text_check: scan the text for nesting far over the budget before parsing
            (`prescan`): for YAML, whose C parser takes 0.3-0.5 s over 10,000-deep flow
            nesting. `json` and `tomllib` stop at the recursion limit within a
            millisecond, and the tree's walk enforces the budget after them: for those
            the scan only cost time (1 ms for a 10,000-leaf JSON file, whose 1,001
            brackets made it count every one).
        within: the parser's own word that a tree it returned is within the node and
            depth budgets (`_ryml.Sections` counts each top-level entry once); without
            it, or when it cannot say, the tree is walked (`check_tree`).

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
    if deep_text_check:
        prescan(text, name)
    try:
        tree = parse(text)
    except RecursionError:
        raise _error("too deeply nested: the parser ran out of stack", name) from None
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - the boundary: nothing a parser raises escapes
        raise _error(_parser_failed(format, exc), name) from None
    if tree is None:
        raise _error("file has no settings (only comments?): expected a mapping of settings", name)
    if not isinstance(tree, Mapping):
        raise _error(f"expected a mapping of settings at the top level, got {_kind_name(tree)}", name)
    if within is None or not within(tree):
        check_tree(tree, name, max_nodes=max_nodes)
    return Layer(name, tree, digest, Located(name, text, parse, positions), revision=revision)


class Located:
    """A document layer's `locate`: the positions of its text, parsed on first use.

    It keeps the text, so `tree()` can parse it again: what a snapshot keeps to place its
    origins later, instead of the tree (a 10,000-leaf tree is ~8x its 126 kB of text).
    """

    __slots__ = ("_found", "_name", "_parse", "_positions", "text")

    def __init__(
        self, name: str, text: str, parse: Callable[[str], Any], positions: Callable[[str, str], Mapping[str, str]]
    ) -> None:
        self._name, self.text, self._parse, self._positions = name, text, parse, positions
        self._found: Mapping[str, str] | None = None

    def __call__(self) -> Mapping[str, str]:
        if self._found is None:
            try:
                self._found = self._positions(self._name, self.text)
            except Exception:  # noqa: BLE001 - positions are a nicety: fall back to the file name
                self._found = {}
        return self._found

    def tree(self) -> Any:
        """The tree again, from the same text (it parsed and passed the guards before)."""
        return self._parse(self.text)


class Positions(dict[str, str]):
    """`{dotted path: origin}` of values, plus `keys`: `{dotted path: origin}` of the keys
    that hold them (an unknown key is reported at its key, a wrong value at the value)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys_at: dict[str, str] = {}


# --- YAML ---------------------------------------------------------------------------------

_DUPLICATE = re.compile(r'found duplicate key "(?P<key>.*?)" with value ')
# Quoted text in a parser's problem is document text (`found character '\t'`, `found
# undefined alias 'x'`) unless it is a token name or one punctuation character.
# Not inside a run of whitespace (`(?<!\s)`): from every space of a long run, `\s*` read
# the run to its end before failing, quadratic in a parser problem quoting such text.
_QUOTED = re.compile(r"""(?<!\s)\s*(?:'[^']*'|"[^"]*")""")
_TOKEN = re.compile(r"""\s*(?:'(?:[\[\]{},:?\-]|<[\w ]+>)'|"'")""")
# Where the parser gives up on an unclosed bracket or quote is often lines later: report
# the opener (the context mark) for these contexts.
_OPENERS: Final = {
    "while parsing a flow sequence": "'[' is not closed",
    "while parsing a flow mapping": "'{' is not closed",
    "while scanning a quoted scalar": "a quoted string is not closed",
}
_TAG_PROBLEM: Final = "unsupported YAML tag"
# Constructor problems in ruamel's words that carry no document text.
_SAFE: Final = (
    "found unhashable key",
    "expected a mapping or list of mappings for merging",
    "expected a mapping for merging",
    "expected a mapping of length 1",
    "expected a single mapping item",
    "expected a sequence",
    "expected a mapping node",
    "expected a scalar node",
    "expected a sequence node",
)
_VALUE_PROBLEM: Final = "a value does not fit its YAML tag"
_DIGITS: Final = f"cannot parse YAML: a number has more than {sys.get_int_max_str_digits():,} digits"


class _Constructor(SafeConstructor):
    """The safe constructor, whose failures all carry a mark and no value.

    ruamel's own raise `KeyError` (`!!bool maybe`), `ValueError` quoting the value (`!!int
    <secret>`) or a tag error quoting the tag. The C parser still does the parsing: the
    constructor is Python in both loaders.
    """

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except DuplicateKeyError:
            raise  # its key is named by `yaml_error`, its values never
        except ConstructorError as exc:
            # ruamel's own quote the value (`failed to construct timestamp from "<value>"`):
            # keep only the few that name no document text.
            if exc.problem in (_TAG_PROBLEM, _VALUE_PROBLEM, _DIGITS) or (exc.problem or "").startswith(_SAFE):
                raise
            raise ConstructorError(None, None, _VALUE_PROBLEM, exc.problem_mark or node.start_mark) from None
        except (YAMLError, RecursionError):
            raise
        except Exception as exc:  # noqa: BLE001 - a constructor choking on a value: at the value
            big = isinstance(exc, ValueError) and "integer string conversion" in str(exc)
            raise ConstructorError(None, None, _DIGITS if big else _VALUE_PROBLEM, node.start_mark) from None

    def construct_undefined(self, node: Any) -> Any:
        raise ConstructorError(None, None, _TAG_PROBLEM, node.start_mark)


_Constructor.add_constructor(None, _Constructor.construct_undefined)


_local = threading.local()


def safe_yaml() -> YAML:
    """This thread's safe loader."""
    # The C loader when ruamel.yaml.clib is installed (3x faster than pure Python). One per
    # thread, reused: building a YAML() scans for plug-ins (a glob), 0.3 ms per call.
    yaml: YAML | None = getattr(_local, "yaml", None)
    if yaml is None:
        yaml = _local.yaml = YAML(typ="safe", pure=False)
        yaml.Constructor = _Constructor
    # A reused YAML keeps one DocInfo per parse: an unbounded leak in a long-lived process.
    yaml.doc_infos.clear()
    return yaml


def _where(name: str, mark: Any) -> str:
    return f"{name}:{mark.line + 1}:{mark.column + 1}"


def problem_text(text: str | None) -> str:
    """A parser's short problem, without any document text it quoted (`found character
    '\\t' that cannot start any token` -> `found character that cannot start any token`)."""
    if not text:
        return "invalid syntax"
    kept = _QUOTED.sub(lambda m: m.group() if _TOKEN.fullmatch(m.group()) else "", text)
    # An unbalanced quote left over means text the patterns did not frame: cut it there.
    unframed = _QUOTED.sub("", kept)
    if "'" in unframed or '"' in unframed:
        kept = kept[: min(i for i in (kept.find("'"), kept.find('"')) if i >= 0)]
    return kept.strip()[:120] or "invalid syntax"


def yaml_error(name: str, exc: YAMLError) -> ConfigError:
    """ruamel's error as a `ConfigError` at `name:line:col`, naming no value and quoting no
    document text (its `str()` carries a snippet of the lines around the error)."""
    if isinstance(exc, ReaderError):
        # A control character: its code point and offset only (the text may be a secret's).
        return ConfigError(
            [Issue("", f"not valid YAML: control characters are not allowed (at offset {exc.position})", name)]
        )
    if not isinstance(exc, MarkedYAMLError) or exc.problem_mark is None:
        return ConfigError([Issue("", f"not valid YAML ({type(exc).__name__})", name)])
    where = _where(name, exc.problem_mark)
    if isinstance(exc, DuplicateKeyError):
        # ruamel's message quotes both values: a secret's would leak. Name the key only.
        m = _DUPLICATE.search(exc.problem or "")
        key = f" {m['key']!r}" if m else ""
        return ConfigError([Issue("", f"duplicate key{key}: each key may appear once in a mapping", where)])
    if exc.problem in (_TAG_PROBLEM, _VALUE_PROBLEM):
        return ConfigError([Issue("", f"{exc.problem} (only plain YAML values are read)", where)])
    if exc.problem == _DIGITS:
        return ConfigError([Issue("", _DIGITS, where)])
    problem = problem_text(exc.problem)
    opener = _OPENERS.get(exc.context or "")
    # A quoted string's other errors (a bad escape) are where the parser says.
    closing = "quoted" not in (exc.context or "") or "end of stream" in problem
    if opener is not None and exc.context_mark is not None and closing:
        mark = exc.problem_mark
        msg = f"YAML syntax error: {opener} (at {mark.line + 1}:{mark.column + 1}: {problem})"
        return ConfigError([Issue("", msg, _where(name, exc.context_mark))])
    context = f" ({problem_text(exc.context)})" if exc.context else ""
    return ConfigError([Issue("", f"YAML syntax error: {problem}{context}", where)])


def roundtrip(name: str, text: str) -> Any:
    """The round-trip tree of `text` (`CommentedMap`s that know each value's line and column).

    Raises:
        ConfigError: a YAML error, at `name:line:col`.
    """
    # A loader per call, unlike `safe_yaml`: the callers (policy files at start) are rare
    # enough that the 0.3 ms to build one does not matter.
    try:
        return YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise yaml_error(name, exc) from None
    except RecursionError:
        raise _error("too deeply nested: the parser ran out of stack", name) from None
    except Exception as exc:  # noqa: BLE001 - the boundary: nothing a parser raises escapes
        raise _error(_parser_failed("YAML", exc), name) from None


def count_values(text: str, name: str, *, max_nodes: int) -> None:
    """Refuse a YAML document holding more than `max_nodes` values before it is built.

    Counts the C parser's events (~1 us each; building the tree costs ~6 us per value), so
    a 4 MiB document of 400,000 items is refused after 100,000 events, not built (57 s
    through round-trip positions before). Aliases count once here; `check_tree` counts
    their expansion on the loaded graph.

    Raises:
        ConfigError: over the budget, or a syntax error.
    """
    count = 0
    # One entry per open collection: _KEY / _VALUE for a mapping (what comes next), _ITEM.
    stack: list[int] = []
    try:
        for event in safe_yaml().parse(text):
            kind = type(event)
            if kind in _ENDS:
                stack.pop()
                continue
            if kind not in _NODES:
                continue
            state = stack[-1] if stack else _ITEM
            if state == _KEY:  # a mapping's key is not a value
                stack[-1] = _VALUE
            else:
                if state == _VALUE:
                    stack[-1] = _KEY
                count += 1
                if count > max_nodes:
                    raise too_many_nodes(name, max_nodes)
            if kind is MappingStartEvent:
                stack.append(_KEY)
            elif kind is SequenceStartEvent:
                stack.append(_ITEM)
    except YAMLError as exc:
        raise yaml_error(name, exc) from None
    except RecursionError:
        raise _error("too deeply nested: the parser ran out of stack", name) from None


_ITEM, _KEY, _VALUE = 0, 1, 2
_NODES: Final = (ScalarEvent, AliasEvent, MappingStartEvent, SequenceStartEvent)
_ENDS: Final = (MappingEndEvent, SequenceEndEvent)


def parse_yaml(name: str, text: str, *, max_nodes: int = MAX_NODES, sections: Sections | None = None) -> Any:
    """The tree of a YAML document, bounded by `max_nodes`: from rapidyaml when it can
    vouch for the result (`_ryml`), else from ruamel's safe C loader, which also places
    every error.

    Raises:
        ConfigError: a YAML error at `name:line:col`, a tag, or over the budget.
    """
    # A value takes at least 2 characters ("1,"): shorter text cannot be over the budget,
    # so the event count (a second pass) is paid only by large documents.
    if len(text) > 2 * max_nodes:
        count_values(text, name, max_nodes=max_nodes)
    tree = fast_tree(text, sections)
    if tree is not None:
        return tree
    try:
        return safe_yaml().load(text)
    except YAMLError as exc:
        raise yaml_error(name, exc) from None


def yaml_positions(name: str, text: str) -> Positions:
    """`{dotted path: "name:line:col"}` of every value, and of every key in `.keys_at`.

    From the C composer's nodes (5x faster than a round-trip parse: 0.5 s for 100,000
    values, against ~8 s), which keep each node's start; merged keys (`<<: *base`) are
    placed where the anchor defines them.
    """
    root = safe_yaml().compose(text)
    out = Positions()
    # An iterative walk: a document may be as deep as the nesting budget allows.
    stack: list[tuple[Any, str]] = [(root, "")]
    seen: set[tuple[int, str]] = set()
    while stack:
        node, path = stack.pop()
        if (id(node), path) in seen:
            continue
        seen.add((id(node), path))
        if isinstance(node, MappingNode):
            merged: list[Any] = []
            for key, value in node.value:
                if key.tag == "tag:yaml.org,2002:merge":
                    merged.extend(value.value if isinstance(value, SequenceNode) else [value])
                    continue
                if not isinstance(key, ScalarNode):
                    continue
                sub = join(path, key.value)
                out[sub] = _where(name, value.start_mark)
                out.keys_at[sub] = _where(name, key.start_mark)
                stack.append((value, sub))
            for base in merged:  # explicit keys win over merged ones
                if isinstance(base, MappingNode):
                    for key, value in base.value:
                        if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                            sub = join(path, key.value)
                            if sub not in out:
                                out[sub] = _where(name, value.start_mark)
                                out.keys_at[sub] = _where(name, key.start_mark)
                                stack.append((value, sub))
        elif isinstance(node, SequenceNode):
            for i, value in enumerate(node.value):
                sub = item(path, i)
                out[sub] = _where(name, value.start_mark)
                stack.append((value, sub))
    return out


def parse_document(
    name: str, data: bytes, digest: str, *, max_nodes: int = MAX_NODES, revision: int | None = None
) -> Layer:
    """Parse a YAML document exactly like `YamlFile` parses a file, naming it `name`
    (`etcd:/app/config@42`), so origins read `etcd:/app/config@42:3:10`.

    Raises:
        ConfigError: not UTF-8, a YAML error (at `name:line:col`), empty, not a mapping,
            or over the nesting and size budgets.
    """
    return document_layer(
        name,
        data,
        digest,
        format="YAML",
        parse=lambda text: parse_yaml(name, text, max_nodes=max_nodes),
        positions=yaml_positions,
        max_nodes=max_nodes,
        revision=revision,
    )

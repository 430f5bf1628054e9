"""Top-level entries reused between parses (`_ryml.Sections`): every document reads exactly
as ruamel reads it, whatever the documents before it held, within the same budgets; and
trees the structurer may trust by identity are only the parsers' own."""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from test_yaml_fast import block, key_text, reference, run_switching, same

import selreload as sr
from selreload import _guard, _ryml
from selreload._errors import ConfigError
from selreload._typing import Layer
from selreload._yaml import parse_document

pytestmark = pytest.mark.skipif(_ryml.parser() is None, reason="rapidyaml (the `fast` extra) is not installed here")

# Text at line starts where a cut before every `key:` line could go wrong: constructs left
# open for a later entry to close, a sequence at its key's indentation, comments and
# block scalars around column 0, keys that are not plain, markers, anchors, plain text
# continued at column 0.
HOSTILE = [
    "{k}: 'open\n",
    "{k}: close'\n",
    '{k}: "open\n',
    '{k}: close"\n',
    "{k}: [1,\n",
    "2]\n",
    "{k}: {{a: 1,\n",
    "b: 2}}\n",
    "{k}:\n- 1\n- 2\n",
    "- 3\n",
    "# a comment at column 0\n",
    "{k}: |\n  text\n# a comment at column 0\n  more\n",
    "{k}: >\n  folded\n\n  paragraph\n",
    "{k}: |\n  text\n\n",
    "---\n",
    "...\n",
    "? {k}\n: v\n",
    '"{k}": quoted key\n',
    "-1: x\n",
    "{k}:x\n",
    "{k} : spaced\n",
    "{k}: plain\ncontinued\n",
    "continued: at column 0\n",
    "{k}: multi\n  line plain\n",
    "{k}:\n",
    "{k}: &a 1\n",
    "{k}: *a\n",
    "\n",
    "   \n",
    "{k}: 1 # c\n",
    '{k}: "a\\nb"\n',
    "{k}:\n  - a\n  -\n    b: 1\n",
    "{k}: [\n  1,\n  2,\n  ]\n",
    "{k}: x\n  # indented comment\n  y\n",
    "{k}:\ttab\n",
    "{k}: 1\r\n",
    "{k}: 1\n{k}: 2\n",
    # Block scalars ending at the cut: the newline before the next entry (and for `+`,
    # the blank lines) are part of the value.
    "{k}: |+\n  kept\n\n\n",
    "{k}: |-\n  stripped\n\n",
    "{k}: >+\n  folded kept\n\n",
    "{k}: |2\n   indented\n",
    "{k}:\n  a: |+\n    1\n\n",
    "{k}:\n  a: >\n    1\n",
    "{k}: |\n  text\n   \n",
    # An implicit key past libyaml's 1024 characters (rapidyaml takes it).
    "{k}" + "x" * 1030 + ": 1\n",
    "\ufeff{k}: bom\n",
    # `key:#` is text, not a key and a comment (a comment follows a space).
    "{k}:#x\n  a: 1\n",
    "{k}:#  b: 1\n  c: 2\n",
]
KEYS = st.one_of(st.sampled_from(["a", "b", "c", "d", "a-b", "x_1"]), key_text)


@st.composite
def entries(draw: st.DrawFn) -> str:
    """One entry's text: a key and a generated body, or hostile text."""
    key = draw(KEYS)
    if draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(HOSTILE)).format(k=key)
    body = draw(block(1))
    return f"{key}:\n" + "\n".join(body) + "\n" if draw(st.booleans()) else f"{key}: {draw(st.integers())}\n"


@st.composite
def documents(draw: st.DrawFn) -> list[str]:
    """A run of documents, each an edit of the one before (most entries unchanged)."""
    pieces = draw(st.lists(entries(), min_size=1, max_size=12))
    docs = ["".join(pieces)]
    for _ in range(draw(st.integers(1, 5))):
        pieces = list(pieces)
        op = draw(st.sampled_from(["replace", "insert", "delete", "swap", "duplicate", "preamble"]))
        i = draw(st.integers(0, len(pieces) - 1))
        if op == "replace":
            pieces[i] = draw(entries())
        elif op == "insert":
            pieces.insert(i, draw(entries()))
        elif op == "delete" and len(pieces) > 1:
            del pieces[i]
        elif op == "swap":
            j = draw(st.integers(0, len(pieces) - 1))
            pieces[i], pieces[j] = pieces[j], pieces[i]
        elif op == "duplicate":
            pieces.insert(i, pieces[i])
        else:
            pieces.insert(0, draw(st.sampled_from(["# head\n", "\n", "  # indented\n", "x\n", "  a: 1\n"])))
        docs.append("".join(pieces))
    return docs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.integers(1, 80))
@example(["a: 1\nb: 2\nc: 3\nd: 4\n", "a: 'x\nb: 2'\nc: 3\nd: 4\n"], 80)
@example(["a: 1\nb: 2\nc: 3\nd: 4\n", "a: [1,\nb: 2]\nc: 3\nd: 4\n"], 80)
@example(["a: 1\nb: 2\nc: 3\nd: 4\n", "a: 1\nb: 2\nc: 3\na: 4\n"], 80)
@example(["a:\n  x: 1\nb: 2\nc: 3\nd: 4\n", "a:\n  x: 1\n  y: 2\nb: 2\nc: 3\nd: 4\n"], 3)
# A block scalar ends with the newline before the next entry (and `|+` with the blank
# lines too): an entry cut without it read `1` for `1\n` (found by this test).
@example(["a:\n  a: |+\n    1\n_: close'\n", "_: close'\n"], 1)
@example(["a: 1\nb: 2\nc: 3\nd: 4\n", "a: 1\nb: |\n  x\nc: 3\nd: 4\n"], 80)
@example(["a: 1\nb: 2\nc: 3\nd: 4\n", "a: 1\nb: >+\n  x\n\n\nc: 3\nd: 4\n"], 80)
@example(["a:\n  x: 1\n  y: 2\nb: 2\n", "a:\n  x: |\n    z\n  y: 2\nb: 2\n"], 80)
# The text below `db:#...` was taken for `db`'s mapping, dropping `host` (found by fuzz_long).
@example(["a: 1\ndb:\n  host: h\n  pool: 8\nc: 3\n", "a: 1\ndb:#  host: h\n  pool: 8\nc: 3\n"], 80)
def test_each_document_reads_as_ruamel_reads_it(docs: list[str], max_nodes: int) -> None:
    """Over runs of edited documents (hostile text at line starts included), parsed with
    one `Sections` as a source parses them: each tree is exactly ruamel's reading of that
    document, or `None` (ruamel then decides); and the budget check the entries' counts
    vouch for agrees with a walk of the tree."""
    sections = _ryml.Sections(max_nodes=max_nodes, min_size=0)
    for text in docs:
        before = dict(sections.entries)
        fast = _ryml.fast_tree(text, sections)
        ok, ref = reference(text)
        if fast is None:
            event("declined")
            continue
        assert ok, f"accepted what ruamel refuses ({ref!r}):\n{text}"
        assert same(fast, ref), f"{fast!r} != ruamel {ref!r}:\n{text}"
        reused = sum(1 for piece in sections.entries if piece in before)
        event("entries reused" if reused else "no entry reused")
        last = sections.last
        if last is not None and last[0] is fast:
            assert sections.within(fast) == _guard.within(fast, max_nodes=max_nodes)


def test_an_entry_left_open_sends_the_document_to_the_whole_parse() -> None:
    """Entries cut apart by an open quote or bracket: their own parse fails, or their keys
    do not line up, and the whole document decides (here: ruamel's one key)."""
    sections = _ryml.Sections(min_size=0)
    base = "".join(f"k{i}: {i}\n" for i in range(10))
    assert _ryml.fast_tree(base, sections) == {f"k{i}": i for i in range(10)}
    assert len(sections.entries) == 10
    for opened in ("k3: 'x\nk4: y'\n", "k3: [1,\nk4: 2]\n", 'k3: "x\nk4: y"\n'):
        text = base.replace("k3: 3\nk4: 4\n", opened)
        ok, ref = reference(text)
        assert ok and "k4" not in ref  # ruamel: one entry, k4 inside k3's value
        fast = _ryml.fast_tree(text, sections)
        assert fast is None or same(fast, ref)


PADDING = "".join(f"pad{i}:\n  a: {i}\n  b: text {i}\n" for i in range(100))  # past the 2,048-byte cut-off


def deep(levels: int) -> str:
    return "deep:\n" + "".join(f"{'  ' * (i + 1)}l{i}:\n" for i in range(levels - 1)) + f"{'  ' * levels}v: 1\n"


@pytest.mark.parametrize(
    ("first", "second", "reused"),
    [
        # Through the entries, level by level (rapidyaml alone declines past ~64 levels).
        (PADDING + "deep: 1\n", PADDING + deep(60), True),
        (PADDING + "deep: 1\n", PADDING + deep(99), True),  # 100 levels: within the budget
        (PADDING + "deep: 1\n", PADDING + deep(100), False),  # 101: too deep
        (PADDING + deep(99), PADDING + deep(100), False),
        (PADDING + deep(99), PADDING + deep(400), False),  # deeper than the cut goes
    ],
)
def test_a_reused_document_is_held_to_the_depth_budget(
    tmp_path: pathlib.Path, first: str, second: str, reused: bool
) -> None:
    """A file source reads the second document through its entries (the first one's are
    reused) and refuses exactly what a parse from scratch refuses, with the same words."""
    path = tmp_path / "c.yaml"
    source = sr.YamlFile(path, watch=False)
    path.write_text(first)
    source.load()
    path.write_text(second)
    try:
        expected: Any = parse_document(source.name, second.encode(), "d").tree
    except ConfigError as exc:
        expected = str(exc)
    try:
        got: Any = source.load().tree
    except ConfigError as exc:
        got = str(exc)
    assert got == expected
    assert source._sections is not None
    assert (source._sections.last is not None and source._sections.last[0] is got) == reused


def test_a_reused_document_is_held_to_the_node_budget(tmp_path: pathlib.Path) -> None:
    """An entry added to a document whose other entries are reused takes it over
    `max_nodes`: refused, as a whole-document count refuses it."""
    path = tmp_path / "c.yaml"
    nodes = 1 + 100 * 3  # the root, then per entry its mapping and two values
    source = sr.YamlFile(path, watch=False, max_nodes=nodes + 2)
    path.write_text(PADDING)
    assert len(source.load().tree or {}) == 100
    path.write_text(PADDING + "extra: [1, 2]\n")  # 3 more nodes: one over
    with pytest.raises(ConfigError, match="document too large: more than 303 values"):
        source.load()
    path.write_text(PADDING + "extra: 1\n")  # 1 more: within
    tree = source.load().tree
    assert tree is not None and tree["extra"] == 1
    assert source._sections is not None and source._sections.within(tree)  # counted, not walked


@sr.config
class Limits:
    rps: int = sr.hot(default=1)


@sr.config
class Root:
    limits: Limits = sr.hot(factory=Limits)
    name: str = sr.hot(default="")


class MutatingSource:
    """A user's source that changes its own dicts in place, under a new digest each time:
    the structurer must not take the same objects for the same values."""

    name = "mine"

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {"limits": {"rps": 1}, "name": "a"}
        self.version = 0

    def load(self) -> Layer:
        return Layer(self.name, self.tree, str(self.version))

    def watch(self, notify: Any) -> None:
        return None


def test_a_tree_changed_in_place_by_its_source_is_read_again() -> None:
    source = MutatingSource()
    reloader = sr.Reloader(Root, [source], registry=CollectorRegistry())
    reloader.start()
    for rps in (5, 9, 5):
        source.tree["limits"]["rps"] = rps  # the same dict, changed
        source.version += 1
        result = reloader.reload()
        assert result.outcome is sr.Outcome.APPLIED, result.errors
        assert reloader.current.limits.rps == rps


def test_threads_parsing_through_one_sections_each_get_their_document() -> None:
    """Eight threads parse two alternating documents through one `Sections` (a reload and
    a `plan()` on one source), with a thread switch as often as CPython allows: each gets
    its own document's tree, and a budget verdict counted for that tree."""
    docs = ["".join(f"k{i}:\n  a: {i}\n  b: {i + (j if i % 7 == 0 else 0)}\n" for i in range(40)) for j in range(2)]
    expected = [{f"k{i}": {"a": i, "b": i + (j if i % 7 == 0 else 0)} for i in range(40)} for j in range(2)]
    sections = _ryml.Sections(min_size=0)
    wrong: list[str] = []
    start = threading.Barrier(8)

    def parse(j: int) -> None:
        start.wait()
        for n in range(400):
            which = (j + n) % 2
            tree = _ryml.fast_tree(docs[which], sections)
            if tree != expected[which]:
                wrong.append(f"document {which} read as {tree!r}")
            if sections.within(tree) and not _guard.within(tree, max_nodes=sections.max_nodes):
                wrong.append("a budget verdict counted for another tree")

    run_switching([threading.Thread(target=parse, args=(i,)) for i in range(8)])
    assert wrong == []


def test_keys_that_do_not_line_up_with_the_cut_are_not_remembered() -> None:
    """The line-up is the last guard (the fast path already declines the documents below):
    a tree whose keys are not the pieces' keys, one each, in order, is not taken apart."""
    sections = _ryml.Sections(min_size=0)
    text = "a: [1,\n2]\nc: 3\n"  # ruamel: two entries over three pieces
    pieces = _ryml._ENTRY_START.split(text)
    assert pieces == ["a: [1,\n", "2]\n", "c: 3\n"]
    ok, tree = reference(text)
    assert ok and tree == {"a": [1, 2], "c": 3}
    assert sections._lined_up(pieces, tree) is None
    assert sections._lined_up(["a: 1\n", "b: 2\n"], {"b": 2, "a": 1}) is None  # another order
    assert sections._lined_up(["a: 1", "b : 2"], {"a": 1, "b": 2}) is None  # not a plain key line
    assert sections._lined_up(["a: 1", "b: 2"], {"a": 1, "b": 2}) == {"a: 1": ("a", 1, 1, 0), "b: 2": ("b", 2, 1, 0)}


@sr.config
class Inner:
    n: int = sr.hot(default=0)
    s: str = sr.hot(default="")


@sr.config
class Part:
    inner: Inner = sr.hot(factory=Inner)
    tags: list[str] = sr.hot(factory=list)
    m: dict[str, int] = sr.hot(factory=dict)


@sr.config
class Whole:
    s0: Part = sr.hot(factory=Part)
    s1: Part = sr.hot(factory=Part)
    s2: Part = sr.hot(factory=Part)
    s3: Part = sr.hot(factory=Part)
    big: Part = sr.hot(factory=Part)


BODIES = [
    "  inner:\n    n: 1\n    s: x\n",
    "  inner:\n    n: 2\n",
    "  inner: {n: 3, s: y}\n",
    "  inner:\n    s: z\n",
    "  tags: [a, b]\n",
    "  tags:\n  - a\n  - c\n",
    "  tags: []\n",
    "  m: {a: 1, b: 2}\n",
    "  m: {a: 3}\n",
    "  inner:\n    n: 1\n  tags: [x]\n  m: {k: 5}\n",
    "  # only a comment\n",
]
BAD_BODIES = [
    "  inner:\n    n: not a number\n",
    "  m:\n    a: 1\n    a: 2\n",  # a duplicate key
    "  m: {a: true}\n",
    "  unknown: 1\n",
    "  inner: 'open\n",
]


def big(edits: dict[int, str]) -> str:
    """A large entry (past the cut-off, so cut again below its key, twice): a mapping of
    300 keys, some of them edited: a new value, or (rarely) hostile lines in a key's place."""
    lines = [f"    k{i}: {i}\n" for i in range(300)]
    for i, edit in edits.items():
        lines[i] = edit if edit.endswith("\n") else f"    k{i}: {edit}\n"
    return "big:\n  inner:\n    n: 1\n  m:\n" + "".join(lines)


HOSTILE_LINES = [
    "    k0: 'open\n",
    "    k5: 7\n",  # a duplicate key (k5 is there too)
    "  # a comment, less indented\n",
    "  x: 1\n",  # a key of `big` between two of `m`
    "   k0: 1\n",  # one space too many
    "    k0:\n      deeper: 1\n",
    "    k0: |\n      text\n",
    "\n",
]
BIG_EDITS = st.dictionaries(
    st.integers(0, 299),
    st.integers(-50, 50).map(str) | st.integers(-50, 50).map(str) | st.sampled_from(HOSTILE_LINES),
    max_size=3,
)


@st.composite
def config_entry(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from(["s0", "s1", "s2", "s3"]))
    roll = draw(st.integers(0, 29))
    if roll == 0:
        return draw(st.sampled_from(HOSTILE)).format(k=draw(st.sampled_from([key, "zz"])))
    if roll == 1:
        return f"{key}:\n" + draw(st.sampled_from(BAD_BODIES))
    # Distinct fields: a field given twice in one entry is a duplicate key.
    fields = draw(st.lists(st.sampled_from(BODIES), min_size=1, max_size=2, unique_by=lambda b: b.split(":")[0]))
    return f"{key}:\n" + "".join(fields)


def strict(config: Any) -> Any:
    """A config as nested plain data, each value with its type (1 == True would hide a change)."""
    if attrs.has(type(config)):
        return {a.name: strict(getattr(config, a.name)) for a in attrs.fields(type(config))}
    if isinstance(config, tuple | list):
        return [strict(v) for v in config]
    if isinstance(config, Mapping):
        return {k: strict(v) for k, v in config.items()}
    return (type(config).__name__, config)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.lists(config_entry(), min_size=1, max_size=4, unique_by=lambda e: e.split(":")[0]), BIG_EDITS),
        min_size=2,
        max_size=6,
    )
)
def test_reloads_through_reused_entries_equal_loads_from_scratch(
    tmp_path_factory: Any, runs: list[tuple[list[str], dict[int, str]]]
) -> None:
    """A watched-style source reloading a run of edited documents (entries reused between
    them, at the top and inside a large entry) ends each reload where a new Reloader
    loading that document from scratch starts: the same config, type for type, or the
    same errors word for word."""
    tmp = tmp_path_factory.mktemp("entries")
    path, fresh_path = tmp / "c.yaml", tmp / "fresh.yaml"
    path.write_text(big({}))
    reloader = sr.Reloader(Whole, [sr.YamlFile(path, watch=False)], registry=CollectorRegistry())
    reloader.start()
    for entries_, edits in runs:
        text = big(edits) + "".join(entries_)
        path.write_text(text)
        result = reloader.reload()
        fresh_path.write_text(text)
        fresh = sr.Reloader(Whole, [sr.YamlFile(fresh_path, watch=False)], registry=CollectorRegistry())
        try:
            fresh.start()
        except ConfigError as exc:
            event("invalid")
            assert result.outcome is sr.Outcome.INVALID
            assert [str(e) for e in result.errors] == [str(e).replace("fresh.yaml", "c.yaml") for e in exc.issues]
            continue
        event(str(result.outcome.value))
        assert result.outcome in (sr.Outcome.APPLIED, sr.Outcome.UNCHANGED), result.errors
        assert strict(reloader.current) == strict(fresh.current)

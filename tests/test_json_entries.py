"""Entries reused between JSON parses (`sources._json.Entries`): every document reads exactly
as `json.loads` reads it, whatever the documents before it held, within the same budgets;
an unchanged entry is the very object it was, so the reload behind it skips it."""

from __future__ import annotations

import json
import pathlib
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from test_yaml_fast import same

import selreload as sr
from selreload import _guard
from selreload._errors import ConfigError
from selreload.sources._json import Entries, JsonFile, _no_duplicates


def reference(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text, object_pairs_hook=_no_duplicates)
    except Exception as exc:  # noqa: BLE001 - any failure: the cut must not succeed
        return False, exc


def source(tmp_path: pathlib.Path, **limits: int) -> JsonFile:
    """A JsonFile whose entry cut works at every size (a real one cuts from 2 kB)."""
    src = JsonFile(tmp_path / "c.json", watch=False, **limits)
    src._entries = Entries(max_nodes=src.max_nodes, min_size=0, min_entry=0)
    return src


def read(src: JsonFile, text: str) -> tuple[bool, Any]:
    """The source's own parse of `text`, with its budgets (`document_layer`)."""
    (src.path).write_text(text, encoding="utf-8")
    try:
        return True, src.load().tree
    except ConfigError as exc:
        return False, exc


# --- documents ------------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "ab", "a.b", "", "é", "\t", '"', "\\", "\u2028", "k" * 40])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12,
)
TREES = st.dictionaries(KEYS, VALUES, min_size=1, max_size=6)
STYLES = st.sampled_from(
    [
        {},
        {"indent": 2},
        {"indent": "\t"},
        {"indent": 0},
        {"separators": (",", ":")},
        {"ensure_ascii": False},
        {"indent": 1, "separators": (" ,", " : ")},
    ]
)
# Text that makes an entry run on into the next ones, or stop early, or repeat a key.
EDITS = st.sampled_from(['"', "{", "}", "[", "]", ",", ":", "1", "0", "e5", ".5", " ", "\n", '"a": 1,', "x", "\\"])


@st.composite
def documents(draw: st.DrawFn) -> list[str]:
    """A sequence of documents, each from the one before: a value changed, keys added or
    removed, reformatted, or text edited anywhere (which breaks it more often than not)."""
    tree = draw(TREES)
    docs = [json.dumps(tree, **draw(STYLES))]
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["value", "add", "drop", "style", "edit", "edit"]))
        if kind == "value":
            tree = {**tree, draw(st.sampled_from(sorted(tree))): draw(VALUES)}
        elif kind == "add":
            tree = {**tree, draw(KEYS): draw(VALUES)}
        elif kind == "drop" and len(tree) > 1:
            gone = draw(st.sampled_from(sorted(tree)))
            tree = {k: v for k, v in tree.items() if k != gone}
        if kind == "edit":
            text = docs[-1]
            at = draw(st.integers(0, len(text)))
            cut = draw(st.integers(0, 3))
            docs.append(text[:at] + draw(EDITS) + text[at + cut :])
        else:
            docs.append(json.dumps(tree, **draw(STYLES)))
    return docs


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
@example(['{"a": 1, "b": 2}', '{"a": 12, "b": 2}'])  # a longer number from the old one's text
@example(['{"a": 1, "b": 2}', '{"a": 1, "b": 2}x'])  # text after the document
@example(['{"a": 1, "b": 2}', '{"a": 1, "a": 2}'])  # a duplicate key at the top
@example(['{"a": {"x": 1}, "b": 2}', '{"a": {"x": 1, "x": 2}, "b": 2}'])  # and below
@example(['{"a": "s", "b": 2}', '{"a": "s, "b": 2}'])  # a string run on into the next entry
@example(['{"a": 1, "b": 2}', '{"a": 1 "b": 2}'])  # a comma missing after a reused value
@example(['{"a": [1], "b": 2}', '{"a": [1]]'])
@example(['{"a": 1}', "{}", '{"a": 1}'])
@example(['{"a": 1}', '[{"a": 1}]', '{"a": 1}'])
@example(['{"a": NaN, "b": -Infinity}', '{"a": NaN, "b": -Infinity, "c": 1}'])
def test_each_document_reads_as_json_loads_reads_it(tmp_path_factory: pytest.TempPathFactory, docs: list[str]) -> None:
    """Through one source, every document reads exactly as `json.loads` reads it on its
    own, type for type and key order included, or both refuse it; and what the budgets are
    counted on is what the whole walk counts."""
    src = source(tmp_path_factory.mktemp("docs"))
    for text in docs:
        ok, ref = reference(text)
        if ok and not isinstance(ref, dict):
            continue  # not a mapping: refused whole, as before the cut
        got_ok, got = read(src, text)
        assert got_ok == ok, (text, got)
        if ok:
            assert same(got, ref), (text, got, ref)
            entries = src._entries
            assert entries is not None
            if entries.last is not None and entries.last[0] is got:
                assert entries.last[1:] == _guard.measure(got)


def test_an_unchanged_entry_is_the_object_it_was(tmp_path: pathlib.Path) -> None:
    src = source(tmp_path)
    doc = {f"s{i}": {"g": {"x": i, "y": [i, str(i)]}, "h": i} for i in range(5)}
    first = read(src, json.dumps(doc, indent=2))[1]
    second = read(src, json.dumps(doc, indent=2))[1]  # the same bytes: the same layer
    assert second is first
    doc["s3"] = {**doc["s3"], "h": 99}
    third = read(src, json.dumps(doc, indent=2))[1]  # seeds the entries
    doc["s3"] = {**doc["s3"], "h": 100}
    fourth = read(src, json.dumps(doc, indent=2))[1]
    assert fourth == doc
    assert all(fourth[k] is third[k] for k in doc if k != "s3")
    assert fourth["s3"] is not third["s3"]
    # A large object is cut into its own entries too, from its next change on.
    doc["s3"] = {**doc["s3"], "h": 101}
    fifth = read(src, json.dumps(doc, indent=2))[1]
    assert fifth == doc
    assert fifth["s3"]["g"] is fourth["s3"]["g"]


def _kept(entry: Any) -> int:
    """Characters of text an entry and the entries below it keep."""
    own = len(entry[0]) if entry[0] is not None else 0
    return own + sum(_kept(e) for e in (entry[4] or {}).values())


@pytest.mark.parametrize("shape", ["chain", "sections"])
def test_entries_keep_each_character_of_the_text_once_at_most(tmp_path: pathlib.Path, shape: str) -> None:
    """However deep the cut goes (a chain of 90 objects, each cut into its one entry), the
    entries keep about the text's size, not a copy per level; and an object whose entries
    are all unchanged is the very object it was."""
    src = source(tmp_path)
    before: Any = None
    for v in range(4):
        if shape == "chain":
            doc: Any = {"leaf": v, "pad": "x" * 2000}
            for _ in range(90):
                doc = {"d": doc, "side": {"k": "y" * 30}}
        else:
            doc = {f"s{i}": {f"g{j}": {"v": v if (i, j) == (0, 0) else j} for j in range(5)} for i in range(5)}
        text = json.dumps(doc)
        tree = read(src, text)[1]
        assert tree == doc
        assert src._entries is not None
        root = src._entries._root
        assert root is not None
        assert _kept(root) <= len(text)
        # Parsed whole, then seeded, then reused: one level more per change.
        if v >= 2 and shape == "sections":
            assert all(tree[f"s{i}"] is before[f"s{i}"] for i in range(1, 5))
        if v >= 3 and shape == "sections":
            assert tree["s0"]["g1"] is before["s0"]["g1"]
            assert tree["s0"] is not before["s0"]
        before = tree


def test_a_source_cuts_large_documents_only_where_entries_are_long(tmp_path: pathlib.Path) -> None:
    """A real source: a 10,000-leaf document of 100 sections is cut (one section parsed
    per change); a flat one of 10,000 short keys keeps its one C call."""
    sections = {f"s{i}": {f"f{j}": j for j in range(100)} for i in range(100)}
    flat = {f"k{i}": i for i in range(10_000)}
    for doc, cut in ((sections, True), (flat, False)):
        src = JsonFile(tmp_path / "c.json", watch=False)
        trees = []
        for v in range(4):
            key = next(iter(doc))
            changed = {**doc, key: v} if not cut else {**doc, key: {**doc[key], "f0": v}}
            trees.append(read(src, json.dumps(changed))[1])
        assert trees[-1] == changed
        reused = all(trees[-1][k] is trees[-2][k] for k in list(doc)[1:])
        assert reused is cut
        assert src._entries is not None
        assert src._entries.within(trees[-1]) is cut


def test_a_cut_document_is_held_to_the_node_budget(tmp_path: pathlib.Path) -> None:
    src = source(tmp_path, max_nodes=60)
    doc = {f"s{i}": {f"f{j}": j for j in range(10)} for i in range(5)}  # 56 nodes
    for v in range(3):
        doc["s0"] = {**doc["s0"], "f0": v}
        assert read(src, json.dumps(doc))[0]
    doc["s4"] = {**doc["s4"], "extra": list(range(5))}
    ok, err = read(src, json.dumps(doc))
    assert not ok
    assert "more than 60" in str(err)


def test_a_cut_document_is_held_to_the_depth_budget(tmp_path: pathlib.Path) -> None:
    """Whatever the entries a document reuses, it passes the depth budget exactly when a
    fresh source's whole parse of it does: at the budget, and one level over it."""
    src = source(tmp_path)
    verdicts = []
    for levels in range(_guard.MAX_DEPTH - 3, _guard.MAX_DEPTH + 2):
        deep: Any = 1
        for _ in range(levels):
            deep = {"d": deep}
        doc = {"a": {"d": deep}, "b": {"x": 1}}
        for v in range(3):  # seeded, then cut: "a" reused, "b" read anew
            doc["b"] = {"x": v}
            text = json.dumps(doc)
            ok, _ = read(src, text)
            fresh_ok = not isinstance(_whole_error_or_none(tmp_path, text), ConfigError)
            assert ok == fresh_ok, (levels, v)
        verdicts.append(ok)
    assert True in verdicts and False in verdicts


def test_a_syntax_error_in_a_new_entry_is_placed_as_the_whole_parse_places_it(tmp_path: pathlib.Path) -> None:
    src = source(tmp_path)
    doc = {"a": {"x": 1}, "b": {"y": 2}, "c": 3}
    for v in range(3):
        doc["c"] = v
        read(src, json.dumps(doc, indent=2))
    text = json.dumps(doc, indent=2).replace('"y": 2', '"y": 2,')
    ok, err = read(src, text)
    assert not ok
    assert str(err) == str(_whole_error(tmp_path, text))
    doc["a"] = {"x": 1, "x2": 1}
    dup = json.dumps(doc, indent=2).replace('"x2"', '"x"')
    ok, err = read(src, dup)
    assert not ok
    assert "duplicate key" in str(err)
    assert str(err) == str(_whole_error(tmp_path, dup))
    # The mended document reads through the entries the broken ones left.
    assert read(src, json.dumps(doc, indent=2)) == (True, doc)


def _whole_error_or_none(tmp_path: pathlib.Path, text: str) -> ConfigError | None:
    """What a fresh source (nothing to reuse) says of `text`."""
    fresh = JsonFile(tmp_path / "c.json", watch=False)
    (tmp_path / "c.json").write_text(text)
    try:
        fresh.load()
    except ConfigError as exc:
        return exc
    return None


def _whole_error(tmp_path: pathlib.Path, text: str) -> ConfigError:
    found = _whole_error_or_none(tmp_path, text)
    assert found is not None
    return found


def test_threads_parsing_through_one_source_each_get_their_document(tmp_path: pathlib.Path) -> None:
    entries = Entries(min_size=0, min_entry=0)
    docs = [json.dumps({f"s{i}": {"v": [n, i]} for i in range(20)}) for n in range(4)]
    failures: list[str] = []

    def run(k: int) -> None:
        for n in range(300):
            text = docs[(n + k) % len(docs)]
            tree = entries.tree(text)
            if tree is None:
                tree = json.loads(text)
                entries.parsed_whole(text, tree)
            if tree != json.loads(text):
                failures.append(text)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []


@sr.config
class Section:
    level: str = sr.hot(default="info")
    limit: int = sr.hot(default=1)


@sr.config
class Root:
    a: Section = sr.field(factory=Section)
    b: Section = sr.field(factory=Section)


def test_a_reload_of_a_cut_document_skips_the_unchanged_section(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "c.json"
    src = JsonFile(path, watch=False)
    src._entries = Entries(max_nodes=src.max_nodes, min_size=0, min_entry=0)
    path.write_text(json.dumps({"a": {"limit": 1}, "b": {"limit": 1}}))
    reloader = sr.Reloader(Root, sources=[src], registry=CollectorRegistry())
    reloader.start()
    try:
        seen: list[tuple[str, ...]] = []
        reloader.on("*", lambda changes, snapshot: seen.append(tuple(c.path for c in changes)))
        path.write_text(json.dumps({"a": {"limit": 2}, "b": {"limit": 1}}))
        reloader.reload()  # the first change seeds the entries
        b = reloader.current.b
        for limit in (3, 4):
            path.write_text(json.dumps({"a": {"limit": limit}, "b": {"limit": 1}}))
            reloader.reload()
            assert reloader.current.a.limit == limit
            assert reloader.current.b is b
        assert seen[1:] == [("a.limit",)] * 3  # after the live values, on registering
    finally:
        reloader.stop()


# Large documents at a real source's thresholds (2 kB documents, 1 kB per key): sections
# of nested objects and long strings, so some are cut into their own entries and some not.
BIG_VALUES = st.recursive(
    st.one_of(SCALARS, st.text(min_size=100, max_size=400)),
    lambda inner: st.dictionaries(st.sampled_from([f"k{i}" for i in range(12)]), inner, max_size=8),
    max_leaves=30,
)
BIG_DOCS = st.dictionaries(
    st.sampled_from([f"sec{i}" for i in range(20)]),
    st.dictionaries(st.sampled_from([f"g{i}" for i in range(12)]), BIG_VALUES, min_size=1, max_size=10),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(BIG_DOCS, st.lists(st.tuples(st.integers(0, 10**9), BIG_VALUES, st.booleans()), min_size=1, max_size=8))
def test_large_documents_at_a_real_sources_thresholds_read_as_json_loads(
    tmp_path_factory: pytest.TempPathFactory, doc: dict[str, Any], edits: list[tuple[int, Any, bool]]
) -> None:
    src = JsonFile(tmp_path_factory.mktemp("big") / "c.json", watch=False)
    docs = [json.dumps(doc)]
    for where, value, broken in edits:
        sections = sorted(doc)
        section = sections[where % len(sections)]
        doc = {**doc, section: {**doc[section], f"g{where % 12}": value}}
        text = json.dumps(doc, indent=where % 3 or None)
        if broken:  # a character in, somewhere
            at = where % (len(text) + 1)
            text = text[:at] + '",}1 '[where % 5] + text[at:]
        docs.append(text)
    for text in docs:
        ok, ref = reference(text)
        got_ok, got = read(src, text)
        assert got_ok == ok, text[:200]
        if ok:
            assert same(got, ref)

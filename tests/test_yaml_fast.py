"""The rapidyaml fast path (`_ryml.fast_tree`) against ruamel's safe loader: the same tree, or `None`."""

from __future__ import annotations

import datetime
import math
import pathlib
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import selreload as sr
from selreload import _ryml
from selreload._errors import ConfigError
from selreload._yaml import parse_document, parse_yaml, safe_yaml


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, all the way down (`1 == 1.0 == True` in Python)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) and type(k) is type(kb) for k, kb in zip(a, b, strict=True))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def reference(text: str) -> tuple[bool, Any]:
    try:
        return True, safe_yaml().load(text)
    except Exception as exc:  # noqa: BLE001 - any failure: the fast path must not succeed
        return False, exc


def check(text: str) -> Any:
    fast = _ryml.fast_tree(text)
    ok, ref = reference(text)
    if fast is not None:
        assert ok, f"fast path accepted what ruamel refuses ({ref!r}):\n{text}"
        assert same(fast, ref), f"fast {fast!r} != ruamel {ref!r}:\n{text}"
    return fast


# Scalars as written in YAML: every style, and the tokens YAML 1.1 and 1.2 read apart.
TOKENS = [
    "yes", "no", "on", "off", "y", "n", "Yes", "ON", "true", "false", "True", "FALSE", "tRUE",
    "~", "null", "Null", "NULL", "nULL", "", "0o17", "0o8", "017", "08", "0x1F", "0xg", "0b101",
    "1_000", "1,000", ".inf", "-.inf", "+.INF", ".nan", ".NaN", "NaN", "Infinity", "-0", "+0",
    "+12", "12", "-12", "0", "00", "1.", ".5", "-.5", "1e3", "1E3", "1e+3", "1.0e-3", "1_0.5",
    "3.14", "01.5", "0.1000000000000000055511151231257827", "1" * 40, "9" * 5000,
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2002-1-1",
    "12:30", "1:20:30", "<<", "=", "a b", "a#b", "a #b", "héllo", "日本", "😀", "\u2028",
    "C:\\new", "x\"y", "it's", "-", "--", "?", "a: b", "@x", "`x", "%x", "|", ">", "}", "]", ",", "]x",
    ", x", "#", "a #", "{", "[",
    # Exponents after a lone 0 or a dot first (found by fuzz_long): rapidyaml quotes a plain
    # `0e5` and writes `.5e3` as `0.5e3`; ruamel reads a float and a string.
    "0E25", "0e0", "0E+2", "0e-3", "-0e5", "+0e5", ".5e3", ".02E0", "-.16e40", "+.5e3", ".5E+2",
    "-.5e-2", "._5e3", "0.5e3", "00e5",
]  # fmt: skip


def styles(token: str) -> st.SearchStrategy[str]:
    single = "'" + token.replace("'", "''") + "'"
    double = '"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return st.sampled_from([token, single, double])


scalar_text = st.one_of(
    st.sampled_from(TOKENS).flatmap(styles),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8).flatmap(styles),
    # YAML's indicators and their neighbours, a few at a time: where parsers part.
    st.text(alphabet="-?:,[]{}#&*!|>'\"%@` ab1.~", min_size=1, max_size=4),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=False).map(repr),
    # Number-shaped text of every part (sign, leading zeros, dot first or last, underscores,
    # exponent with and without its sign): where the resolvers of YAML parsers differ.
    st.from_regex(r"[-+]?(?:0|00|[0-9_]{1,3})?(?:\.[0-9_]{0,3})?(?:[eE][-+]?[0-9]{1,2})?", fullmatch=True),
)
key_text = st.one_of(
    st.sampled_from(["a", "b", "1", "~", "true", "yes", "<<", "x y", "ключ", "'q'", '"d"', "null", "''", "a-b"]),
    st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True),
    st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True),
)


def block(depth: int) -> st.SearchStrategy[list[str]]:
    """Lines of a block mapping at `depth` (2 spaces a level), nested, flow or block values."""
    indent = "  " * depth
    leaf = st.tuples(key_text, scalar_text).map(lambda kv: [f"{indent}{kv[0]}: {kv[1]}"])
    flow = st.tuples(key_text, st.lists(scalar_text, max_size=3)).map(
        lambda kv: [f"{indent}{kv[0]}: [{', '.join(kv[1])}]"]
    )
    flow_map = st.tuples(key_text, st.lists(st.tuples(key_text, scalar_text), max_size=3)).map(
        lambda kv: [f"{indent}{kv[0]}: {{{', '.join(f'{k}: {v}' for k, v in kv[1])}}}"]
    )
    seq = st.tuples(key_text, st.lists(scalar_text, min_size=1, max_size=3)).map(
        lambda kv: [f"{indent}{kv[0]}:"] + [f"{indent}  - {v}" for v in kv[1]]
    )
    literal = st.tuples(
        key_text, st.sampled_from(["|", "|-", "|+", ">", ">-", "|2"]), st.lists(scalar_text, max_size=3)
    ).map(lambda kv: [f"{indent}{kv[0]}: {kv[1]}"] + [f"{indent}  {line}" for line in kv[2]])
    seq_of_maps = st.tuples(
        key_text, st.lists(st.tuples(key_text, scalar_text, key_text, scalar_text), max_size=2)
    ).map(
        lambda kv: (
            [f"{indent}{kv[0]}:"]
            + [line for a, b, c, d in kv[1] for line in (f"{indent}- {a}: {b}", f"{indent}  {c}: {d}")]
        )
    )
    multiline_flow = st.tuples(key_text, st.lists(scalar_text, max_size=3), st.booleans()).map(
        lambda kv: (
            [f"{indent}{kv[0]}: ["]
            + [f"{indent}  {v}," + ("  # note" if kv[2] else "") for v in kv[1]]
            + [f"{indent}  ]"]
        )
    )
    comment = st.sampled_from(["#", "# a: b", "   # indented", ""]).map(lambda c: [f"{indent}{c}"])
    entry: st.SearchStrategy[list[str]] = st.one_of(
        leaf, leaf, flow, flow_map, seq, literal, seq_of_maps, multiline_flow, comment
    )
    if depth < 3:
        nested = st.tuples(key_text, st.deferred(lambda: block(depth + 1))).map(
            lambda kv: [f"{indent}{kv[0]}:", *kv[1]]
        )
        entry = st.one_of(entry, nested)
    return st.lists(entry, min_size=1, max_size=5).map(lambda groups: [line for g in groups for line in g])


# Whole-document twists: anchors and aliases, tags, several documents, comments, tabs, CR, BOM.
TWISTS = [
    lambda s: s,
    lambda s: "base: &b {x: 1}\nuse: *b\n" + s,
    lambda s: "base: &b\n  x: 1\nuse:\n  <<: *b\n  y: 2\n" + s,
    lambda s: "t: !!str 12\n" + s,
    lambda s: "t: !custom x\n" + s,
    lambda s: "---\n" + s + "...\n",
    lambda s: s + "---\nsecond: 1\n",
    lambda s: "%YAML 1.1\n---\n" + s,
    lambda s: "# comment\n" + s.replace("\n", "  # trailing\n", 1),
    lambda s: s.replace("  ", "\t", 1),
    lambda s: s.replace("\n", "\r\n"),
    lambda s: "\ufeff" + s,
    lambda s: s + "\x07bell: 1\n",
    lambda s: s + s,  # duplicate keys at the top level
    lambda s: s.replace(":", ":", 1) + "dup: 1\ndup: 2\n",
    lambda s: s + "big: " + "7" * 5000 + "\n",
    lambda s: s + "{flow: top}\n",
    lambda s: s + "? complex\n: key\n",
    lambda s: s + 'k: "\\u00e9\\x41\\t\\ud800"\n',
    lambda s: s + "k: 'unterminated\n",
    lambda s: s + "k: [1, 2\n",
    lambda s: s + "  bad: indent\n",
]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.deferred(lambda: block(0)), st.one_of(st.just(0), st.sampled_from(range(len(TWISTS)))))
@example(["a: 1"], 0)
@example(["a: }"], 0)  # found by this test: rapidyaml took a closer as text
@example(["k: [12:30]"], 0)
@example(["a: [?1]"], 0)
@example(["a: [1?]"], 0)
@example(["a: >1:"], 0)  # found by this test: rapidyaml took a broken block header as ""
def test_fast_path_agrees_with_ruamel_or_declines(lines: list[str], twist: int) -> None:
    """On generated YAML (every scalar style, tricky tokens, nesting, flow and block styles,
    unicode, anchors, tags, multi-docs, duplicate keys, tabs, CR, BOM, bad syntax) the fast
    path returns exactly ruamel's tree, or `None`; it never accepts what ruamel refuses."""
    text = TWISTS[twist]("\n".join(lines) + "\n")
    fast = check(text)
    event("fast path" if fast is not None else ("declined, valid" if reference(text)[0] else "declined, invalid"))


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("style", ["plain", "single", "double"])
def test_each_token_in_each_style(token: str, style: str) -> None:
    """Every tricky token, as a value, a list item and a key, in every quoting style."""
    text = {"plain": token, "single": "'" + token.replace("'", "''") + "'"}.get(
        style, '"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"'
    )
    for doc in (f"k: {text}\n", f"k:\n  - {text}\n  - [{text}]\n", f"{text}: v\n", f"k: {{x: {text}}}\n"):
        check(doc)


ORDINARY = """\
server:
  host: 0.0.0.0
  port: 8080
  name: "my service"
  version: '1.0'
  workers: 4
  ratio: 0.25
logging:
  level: info
  json: false
  targets: [stdout, 'file']
feature_flags:
  new_checkout: true
  beta: no
  mode: on
tags:
  - a
  - "b"
empty:
note: |
  two
  lines
"""


def test_ordinary_config_takes_the_fast_path_with_yaml_12_values() -> None:
    """A typical config is read by rapidyaml, with YAML 1.2 values (`no`/`on` stay strings)."""
    assert _ryml.parser() is not None, "rapidyaml is installed on Linux x86_64 (pyproject): the fast path must be on"
    fast = check(ORDINARY)
    assert fast is not None
    assert fast["feature_flags"] == {"new_checkout": True, "beta": "no", "mode": "on"}
    assert fast["server"]["version"] == "1.0" and fast["server"]["port"] == 8080
    assert fast["empty"] is None and fast["note"] == "two\nlines\n"


@pytest.mark.parametrize(
    "text",
    [
        "when: 2001-12-14\n",  # a timestamp: ruamel builds a date
        "a: ~\n",
        "a: 0o17\n",
        "a: .inf\n",
        "1: one\n",  # an int key
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: 1\na: 2\n",
        "a: >1:\n",  # block scalar headers libyaml refuses
        "a: |x\n",
        "a: >2-3\n",
        "- |#c\n",
        "a: 1\n\ufeffb: 2\n",  # a BOM at a later line's start: libyaml refuses it (found by fuzz_long)
        "a:\n  x: 1\n\ufeff  y: 2\n",
        "a: 0E25\n",  # rapidyaml quotes it, YAML 1.2 reads a float (found by fuzz_long)
        'a: "0e5"\n',  # the same output: unsure which it was
        "a: .5e3\n",  # rapidyaml writes 0.5e3, ruamel reads a string
        "a:\n  - -.16e40\n",
    ],
)
def test_values_rapidyaml_reads_apart_decline(text: str) -> None:
    """What rapidyaml reads differently from ruamel (or cannot refuse) is left to ruamel."""
    assert _ryml.fast_tree(text) is None
    check(text)


LONG = 1025  # libyaml's limit on an implicit key is 1024 characters


@pytest.mark.parametrize(
    "text",
    [
        "k" * LONG + ": 1\n",
        "a: 1\nflags:\n  " + "k" * LONG + ": true\n",
        '"' + "k" * LONG + '": 1\n',
        "a: {" + "k" * LONG + ": 1}\n",
        "a: 1\n" + "x" * 1020 + "yyyy: 2\n",  # the key starts at column 0 and ends past 1024
        "a:\n  b:\n    " + "k" * (LONG - 4) + ": 1\n",  # deep: the key alone is under 1024
    ],
)
def test_an_implicit_key_past_1024_characters_is_left_to_ruamel(text: str) -> None:
    """libyaml refuses an implicit key longer than 1024 characters, rapidyaml takes it: the
    fast path declines, through a whole parse and through the entry cut, so a file is
    refused or taken the same with the `fast` extra or without it (found by `fuzz_long`)."""
    assert _ryml.fast_tree(text) is None
    assert _ryml.fast_tree(text, _ryml.Sections(min_size=0)) is None
    check(text)


def test_keys_and_values_up_to_the_limit_still_take_the_fast_path() -> None:
    """A key of 1024 characters, and long lines that hold none, are read as ruamel reads them
    (or declined: a line past 1024 characters is left to ruamel whatever it holds)."""
    text = "k" * 1019 + ": 1\n"  # the key and its colon: 1020 characters
    assert same(_ryml.fast_tree(text), reference(text)[1])
    check("a: " + "v" * 2000 + "\n")


def test_parse_yaml_keeps_ruamel_values_and_errors(tmp_path: pathlib.Path) -> None:
    """Through `parse_yaml`, declined documents still get ruamel's values and placed errors."""
    assert parse_yaml("c.yaml", "when: 2001-12-14\nn: 0o17\n") == {"when": datetime.date(2001, 12, 14), "n": 15}
    with pytest.raises(ConfigError) as info:
        parse_yaml("c.yaml", "a: 1\nb:\n  c: 2\n  c: 3\n")
    assert str(info.value) == "c.yaml:4:3: duplicate key 'c': each key may appear once in a mapping"
    with pytest.raises(ConfigError) as info:
        parse_yaml("c.yaml", "a: 1\nb: [1, 2\n")
    assert str(info.value).startswith("c.yaml:2:4: YAML syntax error: '[' is not closed")


def test_syntax_error_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    """rapidyaml's error report (which quotes document text) never reaches stderr."""
    with pytest.raises(ConfigError):
        parse_document("c.yaml", b"password: hunter2\nkey: [x, 'hunter3\n", "d")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_alias_bomb_still_refused() -> None:
    """Anchors go to ruamel, whose graph the node budget counts."""
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for i in "bcdefghi":
        prev = chr(ord(i) - 1)
        bomb += f"{i}: &{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
    with pytest.raises(ConfigError, match="document too large"):
        parse_document("bomb.yaml", bomb.encode(), "d")


def test_yaml_file_reload_through_the_fast_path(tmp_path: pathlib.Path) -> None:
    """A YamlFile reads a real file through the fast path and places a bad value's origin."""
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\nb: two\n")
    layer = sr.YamlFile(path, watch=False).load()
    assert layer.tree == {"a": 1, "b": "two"}
    assert layer.locate()["b"] == f"{path.name}:2:4" or layer.locate()["b"].endswith("c.yaml:2:4")


@pytest.mark.skipif(_ryml.parser() is None, reason="rapidyaml (the `fast` extra) is not installed here")
def test_threads_parsing_at_once_keep_their_own_key_counts() -> None:
    # The decoder that counts keys (to find duplicates) is reused per thread: eight threads
    # parsing at once, half of them documents with a duplicate key, must each get their
    # own answer, every time.
    import threading

    # Thirty mappings: thirty calls of the counting hook per parse, where a switch can land.
    plain = "".join(f"k{i}:\n  a: {i}\n  b: {i}\n" for i in range(30))
    duplicated = "".join(f"k{i}:\n  a: {i}\n  {'a' if i == 15 else 'b'}: {i}\n" for i in range(30))
    expected = {f"k{i}": {"a": i, "b": i} for i in range(30)}
    wrong: list[str] = []
    start = threading.Barrier(8)

    def parse(text: str, duplicate: bool) -> None:
        start.wait()
        for _ in range(1000):
            tree = _ryml.fast_tree(text)
            if duplicate and tree is not None:
                wrong.append("a duplicate key was let through")
            if not duplicate and tree != expected:
                wrong.append(f"the plain document read as {tree!r}")

    run_switching([threading.Thread(target=parse, args=(duplicated if i % 2 else plain, i % 2 == 1)) for i in range(8)])
    assert wrong == []


def run_switching(threads: list[Any]) -> None:
    """Run `threads` to their end, switching between them as often as CPython can (mid-decode too)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)

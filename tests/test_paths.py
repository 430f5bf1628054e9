"""The one path grammar: render and split are inverses, patterns match like fnmatch, did you mean."""

from __future__ import annotations

import fnmatch
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selreload._paths import (
    ancestors,
    did_you_mean,
    hint,
    is_glob,
    is_under,
    item,
    join,
    matches,
    render,
    split,
)

# A name a config class or a mapping key may have: no dots, brackets or glob characters.
names = st.text(st.characters(codec="utf-8", exclude_characters=".[]*?"), min_size=1, max_size=8)
parts = st.lists(st.one_of(names, st.integers(min_value=0, max_value=999)), min_size=1, max_size=6)
attr_paths = st.lists(names, min_size=1, max_size=4)


def test_examples() -> None:
    """The grammar on the examples the docs use."""
    assert render(["providers", 1, "name"]) == "providers[1].name" == item("providers", 1) + ".name"
    assert join("", "a") == "a" and join("a", "b") == "a.b"
    assert split("providers[1].name") == ["providers", 1, "name"]
    assert split("logging.levels.com.example.db", {"logging.levels"}) == ["logging", "levels", "com.example.db"]
    assert list(ancestors("a.b.c")) == ["a.b.c", "a.b", "a"]
    assert is_under("a.b.c", "a.b") and is_under("a.b[0]", "a.b") and not is_under("a.bc", "a.b")


@given(parts)
def test_split_inverts_render(ps: list[str | int]) -> None:
    """`split(render(parts)) == parts` for parts without dots."""
    assert split(render(ps)) == ps


@given(attr_paths, st.lists(names, min_size=2, max_size=4))
def test_dotted_mapping_keys_split_back_whole(root: list[str], key_parts: list[str]) -> None:
    """A mapping key with dots directly under a mapping root is one part when the root is given."""
    key = ".".join(key_parts)
    path = render([*root, key])
    assert split(path, mapping_roots={render(root)}) == [*root, key]
    assert split(path) == [*root, *key_parts]  # without the root, the dots split


@given(attr_paths)
def test_a_path_matches_itself_and_its_prefixes(ps: list[str]) -> None:
    """A plain pattern covers the path it names and every path under it.

    (Attribute paths only: `[` starts a glob character class, so `a[0]` as a pattern is a glob.)
    """
    path = render(ps)
    assert matches(path, path)
    for k in range(1, len(ps)):
        assert matches(render(ps[:k]), path)
        assert not matches(path, render(ps[:k]))


@given(attr_paths, names)
def test_a_longer_name_is_not_under(ps: list[str], extra: str) -> None:
    """`a.b` does not cover `a.bc`: prefixes stop at part boundaries."""
    assert not matches(render(ps), render(ps) + extra)


# Brackets alone too: an unclosed `[`, `[]` and `[!]` (fnmatch reads each its own way).
globs = st.lists(
    st.sampled_from(["a", "b", ".", "*", "?", "[ab]", "ab", "[", "]", "!", "[!", "[]", "-", "[a-"]),
    min_size=1,
    max_size=6,
).map("".join)
subjects = st.lists(st.sampled_from(["a", "b", ".", "ab", "ba", "[", "]", "!", "-"]), min_size=1, max_size=6).map(
    "".join
)


@given(globs, subjects)
def test_globs_match_like_fnmatch(pattern: str, path: str) -> None:
    """A glob covers what `fnmatchcase` matches, and every path under that."""
    expected = fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern + ".*")
    if is_glob(pattern):
        assert matches(pattern, path) == expected
    else:
        assert matches(pattern, path) == is_under(path, pattern)


@pytest.mark.parametrize("unit", ["[a", "[!", "[a-", "*a", "?*", "[]", "a["])
def test_a_long_hostile_glob_compiles_in_linear_time(unit: str) -> None:
    """A pattern of 8,000 characters made of one hostile unit compiles and matches within
    a CPU-second (fnmatch alone took 2.4 s for 8,000 characters of unclosed `[`, growing
    with the square of the length), and matches as fnmatch reads the same unit repeated
    a few times."""
    cpu = time.process_time()
    long = unit * 4_000, unit * 4_000 + "b"
    got = [matches(long[0], subject) for subject in long]
    assert time.process_time() - cpu < 1.0
    short = unit * 5, unit * 5 + "b"
    assert got == [fnmatch.fnmatchcase(s, short[0]) or fnmatch.fnmatchcase(s, short[0] + ".*") for s in short]


@given(names, st.lists(names, max_size=6))
def test_did_you_mean(word: str, candidates: list[str]) -> None:
    """The suggestion is a candidate (the word itself when listed), or None; `hint` words it."""
    found = did_you_mean(word, candidates)
    assert found is None or found in candidates
    if word in candidates:
        assert found == word
    assert hint(word, candidates, otherwise="-") == (f"; did you mean {found!r}?" if found else "-")
    assert did_you_mean(word, []) is None


def test_did_you_mean_finds_a_typo() -> None:
    """A one-letter typo finds the name people meant."""
    assert did_you_mean("modle_name", ["name", "model_name"]) == "model_name"
    assert hint("zzz", ["model_name"]) == ""

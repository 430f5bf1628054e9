"""The node and depth budgets of a loaded tree: the plain walk (`within`) never accepts what
the memoised walk (`walk`) refuses, shared subtrees (aliases) and cycles included."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import selreload as sr
from selreload._guard import check_tree, walk, within


class _Map(dict[str, Any]):  # ruamel's CommentedMap and CommentedSeq are subclasses
    pass


class _Seq(list[Any]):
    pass


class _Text(str):  # EnvText is one
    __slots__ = ()


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=3), st.builds(_Text, st.text(max_size=2))
)


def _trees() -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=4).map(_Seq),
            st.lists(inner, max_size=3).map(tuple),
            st.dictionaries(st.text(max_size=2), inner, max_size=4),
            st.dictionaries(st.text(max_size=2), inner, max_size=4).map(_Map),
        ),
        max_leaves=40,
    )


@st.composite
def shared_trees(draw: st.DrawFn) -> Any:
    """A tree whose containers are reused (YAML aliases load as shared objects)."""
    base = draw(st.lists(_trees(), min_size=1, max_size=3))
    reuse = draw(st.integers(min_value=0, max_value=6))
    out: list[Any] = [base[0]]
    for i in range(reuse):
        out.append([base[i % len(base)], out[-1]])  # each level holds the one before: doubling
    return {"root": out}


def budgeted_trees(test: Any) -> Any:
    """300 trees (plain or with shared subtrees) and a node and a depth budget for each."""
    return settings(max_examples=300, deadline=None)(
        given(
            st.one_of(_trees().filter(lambda t: isinstance(t, list | dict)), shared_trees()),
            st.integers(min_value=1, max_value=200),
            st.integers(min_value=1, max_value=8),
        )(test)
    )


def _walk_ok(tree: Any, max_nodes: int, max_depth: int) -> bool:
    try:
        walk(tree, "t", max_nodes=max_nodes, max_depth=max_depth)
    except sr.ConfigError:
        return False
    return True


@budgeted_trees
def test_the_plain_walk_never_accepts_what_the_memoised_walk_refuses(tree: Any, max_nodes: int, max_depth: int) -> None:
    """`check_tree` (plain walk first, memoised walk when it says over) refuses exactly
    what the memoised walk alone refuses. (The plain walk may be stricter in one corner:
    the memoised walk counts a shared empty container as no level of depth.)"""
    fast = within(tree, max_nodes=max_nodes, max_depth=max_depth)
    memo = _walk_ok(tree, max_nodes, max_depth)
    assert memo or not fast
    try:
        check_tree(tree, "t", max_nodes=max_nodes, max_depth=max_depth)
        verdict = True
    except sr.ConfigError:
        verdict = False
    assert verdict == memo


def _within_by_value(tree: Any, max_nodes: int, max_depth: int) -> bool:
    """`within` as first written: an `isinstance` per value, depth-first."""
    total, stack = 1, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        values = node.values() if isinstance(node, dict) else node
        total += len(values)
        if total > max_nodes:
            return False
        for value in values:
            if isinstance(value, dict | list | tuple):
                if depth >= max_depth:
                    return False
                stack.append((value, depth + 1))
    return True


@budgeted_trees
def test_the_level_walk_answers_as_a_walk_value_by_value(tree: Any, max_nodes: int, max_depth: int) -> None:
    """Containers of scalars are passed over by type in C: subclasses of containers
    (ruamel's) still count as containers, subclasses of `str` as scalars."""
    assert within(tree, max_nodes=max_nodes, max_depth=max_depth) == _within_by_value(tree, max_nodes, max_depth)


def test_a_cycle_is_named_a_recursive_alias_and_a_bomb_stops_at_the_budget() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(sr.ConfigError, match="recursive alias"):
        check_tree({"a": cycle}, "t", max_nodes=1000)
    bomb: Any = ["x"] * 10
    for _ in range(30):  # 10**30 values expanded
        bomb = [bomb] * 10
    assert not within({"b": bomb}, max_nodes=100_000)
    with pytest.raises(sr.ConfigError, match="document too large"):
        check_tree({"b": bomb}, "t", max_nodes=100_000)

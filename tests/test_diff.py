"""Diff and apply_changes: properties over generated configs."""

from __future__ import annotations

import datetime
import enum
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

import selreload as sr
from selreload._diff import Digester, Flattener, apply_changes, diff
from selreload._schema import Schema


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@sr.config
class Inner:
    ratio: float = sr.hot(default=1.0)
    mode: Mode = sr.hot(default=Mode.SAFE)
    hosts: list[str] = sr.restart_only(factory=list)


@sr.config
class Root:
    name: str = sr.hot(default="x")
    port: int = 8080
    ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(minutes=5))
    enabled: bool = sr.hot(default=False)
    inner: Inner = sr.field(factory=Inner)
    flags: dict[str, bool] = sr.hot(factory=dict)


SCHEMA = Schema(Root)
FLATTEN = Flattener(SCHEMA)
DIGEST = Digester(SCHEMA)

inners = st.builds(
    Inner,
    ratio=st.floats(allow_nan=False, allow_infinity=False),
    mode=st.sampled_from(Mode),
    hosts=st.lists(st.text(max_size=5), max_size=3),
)
roots = st.builds(
    Root,
    name=st.text(max_size=8),
    port=st.integers(0, 65535),
    ttl=st.timedeltas(min_value=datetime.timedelta(0), max_value=datetime.timedelta(days=3)),
    enabled=st.booleans(),
    inner=inners,
    flags=st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.booleans(), max_size=4),
)


def _normal(cfg: Root) -> dict[str, Any]:
    flat = FLATTEN(cfg)
    return {k: (list(v) if isinstance(v, list) else v) for k, v in flat.items()}


@given(roots)
def test_diff_of_a_config_with_itself_is_empty(a: Root) -> None:
    """diff(a, a) is empty."""
    assert diff(FLATTEN(a), FLATTEN(a), SCHEMA) == []


@settings(max_examples=200)
@given(roots, roots)
def test_applying_the_diff_gives_the_target(a: Root, b: Root) -> None:
    """Applying diff(a, b)'s new values to a gives b, leaf for leaf."""
    changes = diff(FLATTEN(a), FLATTEN(b), SCHEMA)
    assert _normal(apply_changes(a, changes, SCHEMA)) == _normal(b)


@given(roots, roots)
def test_inverted_diff_goes_back(a: Root, b: Root) -> None:
    """Applying the inverted changes to b gives a again (what a rollback relies on)."""
    changes = diff(FLATTEN(a), FLATTEN(b), SCHEMA)
    back = apply_changes(b, [c.inverted() for c in changes], SCHEMA)
    assert _normal(back) == _normal(a)


@given(roots, roots)
def test_digest_equal_iff_no_changes(a: Root, b: Root) -> None:
    """Two configs have the same digest exactly when they have no differences."""
    same = not diff(FLATTEN(a), FLATTEN(b), SCHEMA)
    assert (DIGEST(a) == DIGEST(b)) == same


def test_type_change_is_a_change() -> None:
    """A value equal under == but of another type (1 vs True) still counts as a change."""
    schema = Schema(_Loose)
    flatten = Flattener(schema)
    changes = diff(flatten(_Loose(value=1)), flatten(_Loose(value=True)), schema)
    assert [(c.old, c.new) for c in changes] == [(1, True)]


@sr.config
class _Loose:
    value: Any = sr.hot(default=None)


def test_policies_ride_on_changes() -> None:
    """Each change carries its resolved policy: restart-only leaves under a hot-less parent."""
    a, b = Root(), Root(port=1, inner=Inner(ratio=0.5, hosts=["h"]))
    got = {c.path: c.policy for c in diff(FLATTEN(a), FLATTEN(b), SCHEMA)}
    assert got == {"port": sr.Policy.RESTART_ONLY, "inner.ratio": sr.Policy.HOT, "inner.hosts": sr.Policy.RESTART_ONLY}


def test_apply_changes_shares_unchanged_subtrees() -> None:
    """Nodes no change touches are the same objects in the result (cheap, and pins stay small)."""
    a = Root(inner=Inner(ratio=0.1))
    b = apply_changes(a, [sr.Change("name", "x", "y", sr.Policy.HOT)], SCHEMA)
    assert b.name == "y" and b.inner is a.inner
    assert attrs.evolve(a, name="y") == b

"""Leaf values: durations both ways, read-only containers, UNSET, plain data."""

from __future__ import annotations

import copy
import datetime
import enum
import pathlib
import pickle

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import selreload as sr
from selreload._values import UNSET, FrozenDict, FrozenList, format_duration, parse_duration, to_plain


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("24h", 86400), ("1h30m", 5400), ("250ms", 0.25), ("90", 90), ("1.5", 1.5), ("2d", 172800)],
)
def test_durations(text: str, seconds: float) -> None:
    """Durations read like Go's: 15m, 24h, 1h30m, 250ms, or plain seconds."""
    assert parse_duration(text) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "m", "15x", "1h 30m", "-5m", "h1"])
def test_bad_durations(text: str) -> None:
    """Anything else is not a duration."""
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (datetime.timedelta(minutes=90), "1h30m"),
        (datetime.timedelta(minutes=15), "15m"),
        (datetime.timedelta(0), "0s"),
        (datetime.timedelta(seconds=1.5), "1.5s"),
        (datetime.timedelta(days=1, seconds=1), "1d1s"),
    ],
)
def test_format_duration(td: datetime.timedelta, text: str) -> None:
    """Durations print the way config files write them; `sr.format_duration` is this one."""
    assert format_duration(td) == text
    assert sr.format_duration is format_duration


@given(st.integers(min_value=0, max_value=10**9))
def test_format_then_parse_is_identity(seconds: int) -> None:
    """Any whole number of seconds survives `format_duration` then `parse_duration`."""
    td = datetime.timedelta(seconds=seconds)
    assert parse_duration(format_duration(td)) == td


def test_frozen_containers_refuse_mutation() -> None:
    """Config mappings and lists raise on every mutating method, and copy and pickle."""
    d, lst = FrozenDict(x=1), FrozenList(["a"])
    with pytest.raises(TypeError, match="immutable"):
        d.update(y=2)
    with pytest.raises(TypeError, match="immutable"):
        d["y"] = 2
    with pytest.raises(TypeError, match="immutable"):
        lst.append("b")
    with pytest.raises(TypeError, match="immutable"):
        lst += ["b"]
    assert d == {"x": 1} and lst == ["a"]
    assert pickle.loads(pickle.dumps(d)) == d and type(copy.deepcopy(lst)) is FrozenList
    assert hash(FrozenDict(x=1)) == hash(d)


def test_unset_is_a_falsy_singleton() -> None:
    """`UNSET` is `sr.UNSET`, falsy, and survives copy and pickle as itself."""
    assert sr.UNSET is UNSET and not UNSET and repr(UNSET) == "UNSET"
    assert copy.deepcopy(UNSET) is UNSET and pickle.loads(pickle.dumps(UNSET)) is UNSET


class Color(enum.Enum):
    RED = "red"


@attrs.frozen
class Node:
    ttl: datetime.timedelta
    color: Color
    where: pathlib.Path
    tags: frozenset[str]
    token: str = sr.secret(default="s3cret")


def test_to_plain_is_unmasked_json_data() -> None:
    """`to_plain` turns leaves into JSON data (durations, enums, paths, sorted sets) and masks nothing."""
    node = Node(datetime.timedelta(minutes=15), Color.RED, pathlib.Path("/x"), frozenset({"b", "a"}))
    assert to_plain({"n": [node]}) == {
        "n": [{"ttl": "15m", "color": "red", "where": "/x", "tags": ["a", "b"], "token": "s3cret"}]
    }

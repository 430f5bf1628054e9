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
from selreload._values import (
    MAX_DURATION,
    UNSET,
    FrozenDict,
    FrozenList,
    format_duration,
    parse_duration,
    read_duration,
    to_plain,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("24h", 86400), ("1h30m", 5400), ("250ms", 0.25), ("90", 90), ("1.5", 1.5), ("2d", 172800)],
)
def test_durations(text: str, seconds: float) -> None:
    """Durations read like Go's: 15m, 24h, 1h30m, 250ms, or plain seconds."""
    assert parse_duration(text) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT15M", 900),
        ("P1DT2H", 93600),
        ("PT0.5S", 0.5),
        ("PT0,5S", 0.5),
        ("P2W", 1209600),
        ("P1W1D", 691200),
        ("pt1h30m", 5400),
        ("+15m", 900),
        ("-0", 0),
        ("1e3", 1000),
        ("36500d", 36500 * 86400),
        ("  90  ", 90),
    ],
)
def test_iso_8601_and_other_accepted_durations(text: str, seconds: float) -> None:
    """ISO 8601 durations (weeks, days, hours, minutes, seconds) are accepted, as pydantic users write them."""
    assert parse_duration(text) == datetime.timedelta(seconds=seconds)


NEGATIVE = "a duration cannot be negative"
TOO_LONG = "a duration must be at most 100 years (36500d)"
NOT_FINITE = "a duration must be finite"
NOT_ONE = "expected a duration like '15m', '24h', '1h30m' or seconds (or ISO 8601 'PT15M')"
CALENDAR = "ISO 8601 years and months have no fixed length (a month is 28 to 31 days): write days or weeks"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5", NEGATIVE),
        ("-5m", NEGATIVE),
        ("-PT5M", NEGATIVE),
        (-5, NEGATIVE),
        (-0.001, NEGATIVE),
        (datetime.timedelta(seconds=-1), NEGATIVE),
        ("36501d", TOO_LONG),
        ("99999999999d", TOO_LONG),
        ("9" * 5000 + "s", TOO_LONG),
        ("1e308", TOO_LONG),
        ("1e999", TOO_LONG),
        (1e308, TOO_LONG),
        (99999999999999999999, TOO_LONG),
        (10**400, TOO_LONG),
        (datetime.timedelta.max, TOO_LONG),
        ("P99999999999W", TOO_LONG),
        (float("inf"), NOT_FINITE),
        (float("-inf"), NOT_FINITE),
        (float("nan"), NOT_FINITE),
        ("inf", NOT_FINITE),
        (".inf", NOT_FINITE),
        ("-Infinity", NOT_FINITE),
        (".nan", NOT_FINITE),
        ("P1Y", CALENDAR),
        ("P1M", CALENDAR),
        ("P1Y2DT3H", CALENDAR),
        ("", NOT_ONE),
        ("m", NOT_ONE),
        ("15x", NOT_ONE),
        ("1h 30m", NOT_ONE),
        ("h1", NOT_ONE),
        ("P", NOT_ONE),
        ("PT", NOT_ONE),
        ("P1DT", NOT_ONE),
        ("PT1H2D", NOT_ONE),
        ("1_0", NOT_ONE),
        ("\u0663s", NOT_ONE),  # an Arabic-Indic digit: only ASCII digits count
        (True, NOT_ONE),
        ([1], NOT_ONE),
    ],
)
def test_refused_durations_say_why(value: object, message: str) -> None:
    """Negative, non-finite, over 100 years, calendar units, or not a duration: each says which."""
    got = read_duration(value)
    assert isinstance(got, str) and got.startswith(message), got
    if isinstance(value, str):
        assert parse_duration(value) is None


def test_longest_duration_is_100_years_and_safe_to_add() -> None:
    """`MAX_DURATION` is accepted and adding it to now (or to datetime.min) cannot overflow."""
    assert read_duration("36500d") == MAX_DURATION == datetime.timedelta(days=36_500)
    assert datetime.datetime.now() + MAX_DURATION > datetime.datetime.now()
    assert MAX_DURATION.total_seconds() * 1_000_000 < 2**53  # exact to the microsecond as float seconds


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

"""Hostile values in every format end INVALID with an issue naming path and origin, never
an exception out of `reload()`, and the live config stays as it was."""

from __future__ import annotations

import datetime
import enum
import ipaddress
import pathlib
import re
from collections.abc import Iterator
from typing import Any, Literal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._schema import Schema
from selreload._structure import MAX_JSON_TEXT, Structurer
from selreload._values import TEXT_TYPES, EnvText


@sr.config
class Cfg:
    name: str = sr.hot(default="live")
    ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(seconds=30))
    ratio: float = sr.hot(default=0.5)
    n: int = sr.hot(default=0)
    tags: list[str] = sr.hot(factory=list)
    extra: dict[str, str] = sr.hot(factory=dict)
    blob: dict[str, object] = sr.hot(factory=dict)


GOOD = {"yaml": "name: live\n", "json": '{"name": "live"}\n', "toml": 'name = "live"\n'}
FILES: dict[str, Any] = {"yaml": sr.YamlFile, "json": sr.JsonFile, "toml": sr.TomlFile}
BIG = "1" + "0" * 400  # past the largest float


@attrs.define
class Live:
    """A started Reloader on one source of format `fmt`; `set(field, text)` puts a hostile value."""

    fmt: str
    reloader: sr.Reloader[Cfg]
    path: pathlib.Path | None
    env: dict[str, str]

    def set(self, field: str, text: str) -> None:
        if self.path is None:
            self.env[f"APP_{field.upper()}"] = text
            return
        rest = "" if field == "name" else GOOD[self.fmt]
        if self.fmt == "json":
            rest = "" if field == "name" else '"name": "live",\n '
            self.path.write_text(f'{{{rest}"{field}": {text}}}\n', encoding="utf-8")
        else:
            line = f"{field}: {text}\n" if self.fmt == "yaml" else f"{field} = {text}\n"
            self.path.write_text(rest + line, encoding="utf-8")

    def assert_invalid(self, path: str, needle: str) -> sr.ReloadResult:
        """INVALID, one issue at `path` with its origin and `needle`; live config untouched."""
        before = self.reloader.current
        result = self.reloader.reload()
        text = "\n".join(str(e) for e in result.errors)
        assert result.outcome is sr.Outcome.INVALID, text
        origin = rf"{re.escape(str(self.path))}:\d+:\d+" if self.path else re.escape(f"env:APP_{path.upper()}")
        assert re.search(rf"^{origin}: {re.escape(path)}\S*: .*{re.escape(needle)}", text, re.M), text
        assert self.reloader.current is before and before.name == "live"
        return result


@pytest.fixture
def live(tmp_path: pathlib.Path, request: pytest.FixtureRequest) -> Iterator[Live]:
    fmt: str = request.param
    env: dict[str, str] = {}
    path = None if fmt == "env" else tmp_path / f"config.{fmt}"
    if path is not None:
        path.write_text(GOOD[fmt])
    source = sr.Env("APP_", env) if path is None else FILES[fmt](path, watch=False)
    reloader = sr.Reloader(Cfg, [source], registry=CollectorRegistry(), audit=sr.AuditLog(tmp_path / "audit.jsonl"))
    reloader.start()
    try:
        yield Live(fmt, reloader, path, env)
    finally:
        reloader.stop()


# field, {format: text as written there}, what the message says
HOSTILE = {
    "ttl-inf": ("ttl", {"yaml": ".inf", "json": "Infinity", "toml": "inf", "env": "inf"}, "a duration must be finite"),
    "ttl-nan": ("ttl", {"yaml": ".nan", "json": "NaN", "toml": "nan", "env": ".nan"}, "a duration must be finite"),
    "ttl-1e308": ("ttl", dict.fromkeys(["yaml", "json", "toml", "env"], "1e308"), "at most 100 years (36500d)"),
    "ttl-20-digits": (
        "ttl",
        {"yaml": "99999999999999999999", "json": "99999999999999999999", "env": "9" * 20},
        "at most 100 years",
    ),
    "ttl-99999999999d": (
        "ttl",
        {"yaml": "99999999999d", "json": '"99999999999d"', "toml": '"99999999999d"', "env": "99999999999d"},
        "at most 100 years",
    ),
    "ttl-i64": ("ttl", {"toml": "9223372036854775807"}, "at most 100 years"),
    "ttl-negative": ("ttl", dict.fromkeys(["yaml", "json", "toml", "env"], "-5"), "a duration cannot be negative, got"),
    "ttl-negative-text": (
        "ttl",
        {"yaml": "-5m", "json": '"-5m"', "toml": '"-5m"', "env": "-5m"},
        "a duration cannot be negative",
    ),
    "ttl-negative-iso": (
        "ttl",
        {"yaml": "-PT5M", "json": '"-PT5M"', "toml": '"-PT5M"', "env": "-PT5M"},
        "cannot be negative",
    ),
    "ratio-400-digits": (
        "ratio",
        {"yaml": BIG, "json": BIG, "env": BIG},
        "number out of range: past the largest float",
    ),
    "ratio-inf": (
        "ratio",
        {"yaml": ".inf", "json": "-Infinity", "toml": "inf", "env": "inf"},
        "expected a finite number",
    ),
    "ratio-nan": ("ratio", {"yaml": ".nan", "json": "NaN", "toml": "nan", "env": "nan"}, "expected a finite number"),
    "ratio-1e999": ("ratio", {"env": "1e999"}, "number out of range"),
    "int-5000-digits": ("n", {"env": "7" * 5000}, "integer too long: 5,000 digits, over the limit of 4,300"),
    "surrogate": (
        "name",
        {"json": '"x\\ud800y"', "env": "x\udcffy"},
        "not valid text: contains an unpaired surrogate at index 1",
    ),
    "surrogate-item": (
        "tags",
        {"json": '["ok", "\\udfff"]', "env": '["ok", "\\udfff"]'},
        "unpaired surrogate at index 0",
    ),
    "surrogate-key": (
        "extra",
        {"json": '{"k\\ud800": "v"}', "env": '{"k\\ud800": "v"}'},
        "unpaired surrogate at index 1",
    ),
    "surrogate-untyped": ("blob", {"json": '{"a": ["\\ud800"]}', "env": '{"a": ["\\ud800"]}'}, "unpaired surrogate"),
    "env-json-deep-list": ("tags", {"env": "[" * 3000 + "]" * 3000}, "too deeply nested: more than 100 levels"),
    "env-json-deep-map": (
        "extra",
        {"env": '{"a":' * 3000 + "1" + "}" * 3000},
        "too deeply nested: more than 100 levels",
    ),
    "env-json-huge": ("tags", {"env": '["' + "x" * MAX_JSON_TEXT + '"]'}, "over the limit of 1,048,576"),
    "env-json-long-int": ("extra", {"env": '{"a": ' + "1" * 5000 + "}"}, "an integer too long to read"),
}
CASES = [
    pytest.param(fmt, field, text, needle, id=f"{fmt}-{name}")
    for name, (field, texts, needle) in HOSTILE.items()
    for fmt, text in texts.items()
]


@pytest.mark.parametrize(("live", "field", "text", "needle"), CASES, indirect=["live"])
def test_hostile_value_is_invalid_with_its_origin(live: Live, field: str, text: str, needle: str) -> None:
    """Each hostile value is INVALID, placed at `file:line:col` or `env:APP_X`, the live config kept."""
    live.set(field, text)
    live.assert_invalid(field, needle)


@pytest.mark.parametrize("live", ["json"], indirect=True)
def test_surrogate_in_json_is_audited(live: Live, tmp_path: pathlib.Path) -> None:
    """A lone surrogate in a JSON string is INVALID and its audit record is written and verifies."""
    live.set("name", '"x\\ud800y"')
    live.assert_invalid("name", "not valid text")
    records = sr.read_audit(tmp_path / "audit.jsonl")
    assert [r["outcome"] for r in records] == ["applied", "invalid"]
    assert "unpaired surrogate at index 1" in str(records[-1]["errors"])
    assert sr.verify_audit(tmp_path / "audit.jsonl").ok


@pytest.mark.parametrize("live", ["yaml", "json", "env"], indirect=True)
def test_iso_and_large_ints_still_go_live(live: Live) -> None:
    """What is not hostile still goes live: ISO 8601 durations, ints past 2**63 (not TOML: 64-bit ints)."""
    big = str(2**80)
    live.set("ttl", {"json": '"PT15M"', "yaml": "PT15M", "env": "PT15M"}[live.fmt])
    assert live.reloader.reload().outcome is sr.Outcome.APPLIED
    assert live.reloader.current.ttl == datetime.timedelta(minutes=15)
    live.set("n", big)
    assert live.reloader.reload().outcome is sr.Outcome.APPLIED, live.reloader.status()
    assert live.reloader.current.n == 2**80


# --- property: env text never makes structuring raise -------------------------------------

S = Structurer(Schema(Cfg))
TYPES = [int, float, bool, str, datetime.timedelta, list[str], dict[str, int], dict[str, object], int | None]
HOSTILE_TEXT = st.one_of(
    st.text(),
    st.sampled_from(["inf", "-inf", "nan", ".inf", "1e308", "1e999", "-5", "PT", "P1M", "P1DT", "PT0.5S", "1_0", "٣"]),
    st.integers(min_value=0, max_value=6000).map(lambda n: "9" * n),
    st.integers(min_value=0, max_value=3000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=0, max_value=3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.builds(lambda a, b: a + b, st.text(), st.sampled_from(["\ud800", "\udcff", "\\ud800", '"\\udfff"'])),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TYPES), HOSTILE_TEXT)
def test_env_text_never_raises(tp: Any, text: str) -> None:
    """Any text from env, for any field type: a value or issues, never an exception."""
    value, issues = S.structure_value(EnvText(text), tp, "x")
    assert (value is None) == bool(issues) or (value is None and tp == int | None)
    for issue in issues:
        issue.message.encode("utf-8")  # every message can be written to the audit log
        issue.path.encode("utf-8")


# --- property: any parsed value, for any field type, is a value or issues at its path ------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@sr.config
class Pair:
    host: str = sr.hot(default="h")
    port: int = sr.hot(default=1)


PARSED_TYPES = [
    *TYPES,
    Color,
    Literal["a", "b"],
    Literal[1, 2],
    tuple[int, str],
    frozenset[str],
    set[int],
    dict[str, Color],
    list[Pair],
    Pair,
    pathlib.Path,
    *TEXT_TYPES,  # addresses, networks, UUIDs, decimals, dates and times
    list[ipaddress.IPv4Network],
    float | str,
    Color | None,
]
# What the YAML, JSON and TOML parsers hand over: scalars (dates too), lists and mappings.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["red", "a", "1h", "127.0.0.1", "\ud800"]),
    st.dates(),
    st.datetimes(),
)
PARSED = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(PARSED_TYPES), PARSED)
def test_a_parsed_value_never_raises(tp: Any, raw: Any) -> None:
    """Any value a parser can produce, for any field type: a value or issues naming a place
    under the field, never an exception (which `reload()` would only report as "failed
    unexpectedly", with no place)."""
    value, issues = S.structure_value(raw, tp, "x")
    assert (value is None) == bool(issues) or (value is None and not issues)
    for issue in issues:
        assert issue.path == "x" or issue.path.startswith(("x.", "x[")), issue
        issue.message.encode("utf-8")


MARK = "SECRETMARKER-77"
# Parsed values that hold the marker somewhere: as a scalar, or deep inside a list or a mapping.
MARKED = st.recursive(
    st.one_of(st.just(MARK), st.builds(lambda a: f"{a}{MARK}", st.text(max_size=5)), SCALARS),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abc"), inner, max_size=3)),
    max_leaves=8,
).filter(lambda v: MARK in repr(v))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PARSED_TYPES), MARKED)
def test_a_secret_fields_value_is_never_quoted(tp: Any, raw: Any) -> None:
    """A secret field of any type, given any value holding the secret: no issue quotes it."""
    _, issues = S.structure_value(raw, tp, "x", secret=True)
    assert not any(MARK in f"{i.path}: {i.message}" for i in issues), issues


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PARSED_TYPES), MARKED.filter(lambda v: isinstance(v, list | dict)))
def test_a_container_where_it_does_not_belong_is_never_quoted(tp: Any, raw: Any) -> None:
    """A list or mapping refused as a whole is described by its shape: whatever a
    mis-indented block swallowed (a sibling's secret) is not in the message. Only what the
    field's own type reads item by item may show, under the item's own path."""
    _, issues = S.structure_value(raw, tp, "x")
    assert not any(MARK in i.message for i in issues if i.path == "x"), issues

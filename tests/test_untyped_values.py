"""Untyped fields (`dict[str, object]`, `object`) take what the document holds, except what
no channel can render: whatever goes live there is strict JSON in the audit log, the admin
API's `/config` and `/explain`, and `status()`.

Measured before: `extra: {k: .nan}` went live; `/config` and `/explain` answered 500
("Out of range float values are not JSON compliant"), the audit record held a bare `NaN`
(not JSON), and NaN != NaN made every later diff see a change. `!!binary` made both
endpoints 500 too ("Object of type bytes is not JSON serializable").
"""

from __future__ import annotations

import datetime
import io
import json
import pathlib
import tempfile
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from ruamel.yaml import YAML

import selreload as sr
from selreload.asgi import admin_app

TOKEN = "t0ken-untyped-values"


@sr.config
class App:
    level: str = sr.hot(default="info")
    extra: dict[str, object] = sr.hot(factory=dict)
    items: list[object] = sr.hot(factory=list)


def _strict(text: str | bytes) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("extra:\n  k: .nan\n", "extra.k: expected a finite number (inf and nan are refused)"),
        ("extra:\n  k: [1, -.inf]\n", "extra.k[1]: expected a finite number"),
        ("extra:\n  k: {deep: {x: 1e400}}\n", "extra.k.deep.x: expected a finite number"),
        ("items: [.inf]\n", "items[0]: expected a finite number"),
        ("extra:\n  k: !!binary aGk=\n", "extra.k: binary data (!!binary) is not a config value: write it as text"),
    ],
)
def test_what_no_channel_can_render_is_refused_at_its_place(tmp_path: pathlib.Path, yaml: str, message: str) -> None:
    """NaN, infinities and bytes, at any depth of an untyped field: INVALID, placed."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("level: info\n")
    with sr.Reloader(App, [sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry()) as r:
        cfg.write_text(yaml)
        result = r.reload()
        assert result.outcome is sr.Outcome.INVALID
        assert any(message in str(e) and str(e).startswith(f"{cfg}:") for e in result.errors), result.errors
        assert r.current.extra == {} and r.current.items == []


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.dates(),
    st.datetimes(timezones=st.just(datetime.UTC)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


def _yaml_of(value: Any) -> str:
    """`value` as YAML: ruamel writes every type above with its own tag or form."""
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump({"extra": {"k": value}}, out)
    return out.getvalue()


async def _endpoints(reloader: sr.Reloader[App]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=admin_app(reloader, token=TOKEN), client=("127.0.0.1", 50123))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000", headers=headers) as c:
        return [await c.get(path) for path in ("/config", "/explain", "/status")]


@settings(max_examples=120, deadline=None)
@given(value=VALUES)
def test_whatever_goes_live_renders_as_strict_json_everywhere(value: Any) -> None:
    """Any YAML value in an untyped field: refused with an issue, or live and then strict
    JSON in the audit record, `/config`, `/explain` and `/status` (all 200)."""
    with tempfile.TemporaryDirectory() as d:
        cfg, audit = pathlib.Path(d, "c.yaml"), pathlib.Path(d, "audit.jsonl")
        cfg.write_text("level: info\n")
        r = sr.Reloader(App, [sr.YamlFile(cfg, watch=False)], audit=sr.AuditLog(audit), registry=CollectorRegistry())
        with r:
            cfg.write_text(_yaml_of(value))
            result = r.reload()
            assert result.outcome in (sr.Outcome.APPLIED, sr.Outcome.INVALID, sr.Outcome.UNCHANGED), result
            for answer in anyio.run(_endpoints, r):
                assert answer.status_code == 200, answer.text
                _strict(answer.content)
        for line in audit.read_bytes().splitlines():
            _strict(line)


def _containers(value: Any) -> list[Any]:
    found = [value]
    if isinstance(value, dict):
        found += [c for v in value.values() for c in _containers(v)]
    elif isinstance(value, list | tuple | frozenset):
        found += [c for v in value for c in _containers(v)]
    return found


def test_untyped_data_is_read_only_at_every_depth(tmp_path: pathlib.Path) -> None:
    """Maps, lists, sets and ordered maps inside an untyped field are read-only, as typed
    data is: before, `current.extra["m"]["a"] = 2` changed the live config under every
    reader (and `!!set` and `!!omap` went live as a mutable set and OrderedDict)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("extra:\n  m: {a: [1, {b: 2}]}\n  s: !!set {x}\n  o: !!omap [k: 1]\n  p: !!pairs [a: 1]\n")
    with sr.Reloader(App, [sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry()) as r:
        extra = r.current.extra
        assert extra == {"m": {"a": [1, {"b": 2}]}, "s": {"x"}, "o": {"k": 1}, "p": [("a", 1)]}
        for attempt in (
            lambda: extra["m"].__setitem__("a", 2),
            lambda: extra["m"]["a"].append(3),
            lambda: extra["m"]["a"][1].update(c=3),
            lambda: extra["o"].__setitem__("k", 2),
            lambda: extra["s"].add("y"),  # type: ignore[attr-defined]
            lambda: extra["p"].clear(),
        ):
            with pytest.raises((TypeError, AttributeError)):
                attempt()
        assert r.current.extra == {"m": {"a": [1, {"b": 2}]}, "s": {"x"}, "o": {"k": 1}, "p": [("a", 1)]}
        assert r.reload().outcome is sr.Outcome.UNCHANGED


@settings(max_examples=100, deadline=None)
@given(value=VALUES)
def test_every_container_that_goes_live_untyped_is_read_only(value: Any) -> None:
    """Whatever an untyped field takes live, no container in it is a plain dict, list or set."""
    with tempfile.TemporaryDirectory() as d:
        cfg = pathlib.Path(d, "c.yaml")
        cfg.write_text(_yaml_of(value))
        r = sr.Reloader(App, [sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry())
        try:
            r.start()
        except sr.ConfigError:
            return
        try:
            for c in _containers(r.current.extra):
                assert type(c) not in (dict, list, set), (type(c), c)
        finally:
            r.stop()

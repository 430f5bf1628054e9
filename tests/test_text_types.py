"""Fields of the standard library's text-written types (addresses, networks, UUIDs, decimals,
dates and times): read from every format, refused with their place, rendered as text in
every output, described by the JSON Schema."""

from __future__ import annotations

import datetime
import decimal
import ipaddress
import json
import pathlib
import uuid
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._schema import Schema
from selreload._structure import Structurer
from selreload._values import TEXT_TYPES, EnvText, to_plain


@sr.config
class Net:
    allow: list[ipaddress.IPv4Network] = sr.hot(factory=list)
    allow6: frozenset[ipaddress.IPv6Network] = sr.hot(factory=frozenset)
    bind: ipaddress.IPv4Address = sr.restart_only(default=ipaddress.IPv4Address("127.0.0.1"))
    gateway: ipaddress.IPv6Interface | None = sr.hot(default=None)
    tenant: uuid.UUID = sr.hot(default=uuid.UUID(int=0))
    api_key_id: uuid.UUID = sr.secret(default=uuid.UUID(int=1))
    price: decimal.Decimal = sr.hot(default=decimal.Decimal("0"))
    launch: datetime.date = sr.hot(default=datetime.date(2026, 1, 1))
    cutover: datetime.datetime = sr.hot(default=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    quiet_from: datetime.time = sr.hot(default=datetime.time(22, 0))


EXPECTED = Net(
    allow=[ipaddress.IPv4Network("10.0.0.0/8"), ipaddress.IPv4Network("192.168.0.0/16")],
    allow6=frozenset({ipaddress.IPv6Network("2001:db8::/32")}),
    bind=ipaddress.IPv4Address("0.0.0.0"),
    gateway=ipaddress.IPv6Interface("2001:db8::1/64"),
    tenant=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    api_key_id=uuid.UUID(int=1),
    price=decimal.Decimal("0.10"),
    launch=datetime.date(2026, 12, 3),
    cutover=datetime.datetime(2026, 12, 3, 10, 30, tzinfo=datetime.UTC),
    quiet_from=datetime.time(23, 30),
)
UUID = "12345678-1234-5678-1234-567812345678"
DOCS = {
    # YAML and TOML read dates and times themselves; JSON and env give text.
    "yaml": (
        "allow: [10.0.0.0/8, 192.168.0.0/16]\nallow6: ['2001:db8::/32']\nbind: 0.0.0.0\n"
        f"gateway: '2001:db8::1/64'\ntenant: {UUID}\nprice: '0.10'\n"
        "launch: 2026-12-03\ncutover: 2026-12-03T10:30:00Z\nquiet_from: '23:30'\n"
    ),
    "json": json.dumps(
        {
            "allow": ["10.0.0.0/8", "192.168.0.0/16"],
            "allow6": ["2001:db8::/32"],
            "bind": "0.0.0.0",
            "gateway": "2001:db8::1/64",
            "tenant": UUID,
            "price": "0.10",
            "launch": "2026-12-03",
            "cutover": "2026-12-03T10:30:00+00:00",
            "quiet_from": "23:30:00",
        }
    ),
    "toml": (
        'allow = ["10.0.0.0/8", "192.168.0.0/16"]\nallow6 = ["2001:db8::/32"]\nbind = "0.0.0.0"\n'
        f'gateway = "2001:db8::1/64"\ntenant = "{UUID}"\nprice = "0.10"\n'
        "launch = 2026-12-03\ncutover = 2026-12-03T10:30:00Z\nquiet_from = 23:30:00\n"
    ),
}
ENV = {
    "NET_ALLOW": '["10.0.0.0/8", "192.168.0.0/16"]',
    "NET_ALLOW6": '["2001:db8::/32"]',
    "NET_BIND": "0.0.0.0",
    "NET_GATEWAY": "2001:db8::1/64",
    "NET_TENANT": f" {UUID} ",  # env text is stripped, as for numbers
    "NET_PRICE": "0.10",
    "NET_LAUNCH": "2026-12-03",
    "NET_CUTOVER": "2026-12-03T10:30:00Z",
    "NET_QUIET_FROM": "23:30",
}
FILES: dict[str, Any] = {"yaml": sr.YamlFile, "json": sr.JsonFile, "toml": sr.TomlFile}


def reloader_for(fmt: str, root: pathlib.Path, **kwargs: Any) -> tuple[sr.Reloader[Net], pathlib.Path | None]:
    if fmt == "env":
        source = sr.Env(prefix="NET_", environ=dict(ENV))
        return sr.Reloader(Net, [source], registry=CollectorRegistry(), **kwargs), None
    path = root / f"config.{fmt}"
    path.write_text(DOCS[fmt])
    return sr.Reloader(Net, [FILES[fmt](path, watch=False)], registry=CollectorRegistry(), **kwargs), path


@pytest.mark.parametrize("fmt", ["yaml", "json", "toml", "env"])
def test_every_format_reads_them(fmt: str, tmp_path: pathlib.Path) -> None:
    """The same values from YAML, JSON, TOML and env, as the types the fields declare."""
    reloader, _ = reloader_for(fmt, tmp_path)
    with reloader:
        assert reloader.current == EXPECTED
        assert type(reloader.current.cutover) is datetime.datetime
        assert type(reloader.current.launch) is datetime.date


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("allow: [10.0.0.1/8]", "3:9: allow[0]: expected an IPv4 network like '10.0.0.0/8', got str '10.0.0.1/8'"),
        ("allow: [300.0.0.0/8]", "allow[0]: expected an IPv4 network like '10.0.0.0/8', got str '300.0.0.0/8'"),
        ("allow: 10.0.0.0/8", "allow: expected a list, got str"),
        ("allow6: ['10.0.0.0/8']", "allow6[0]: expected an IPv6 network like '2001:db8::/32'"),
        ("tenant: not-a-uuid", "tenant: expected a UUID like '12345678-1234-5678-1234-567812345678', got str"),
        ("tenant: 12", "tenant: expected a UUID like '12345678-1234-5678-1234-567812345678', got int 12"),
        ("price: .nan", "price: expected a finite decimal number like 0.10 or '0.10', got float nan"),
        ("price: 'Infinity'", "price: expected a finite decimal number like 0.10 or '0.10', got str 'Infinity'"),
        ("price: [1]", "price: expected a finite decimal number like 0.10 or '0.10', got a list of 1 item"),
        ("launch: '2026-13-01'", "launch: expected an ISO 8601 date like 2026-12-03, got str '2026-13-01'"),
        ("launch: 2026-12-03T10:30:00Z", "launch: expected an ISO 8601 date like 2026-12-03, got datetime"),
        ("cutover: tomorrow", "cutover: expected an ISO 8601 date and time like 2026-12-03T10:30:00+00:00"),
        ("quiet_from: 25:00", "quiet_from: expected an ISO 8601 time like 10:30:00, got str '25:00'"),
        ("api_key_id: not-a-uuid", "api_key_id: expected a UUID like '" + UUID + "', got str ***"),
    ],
)
def test_a_bad_value_is_refused_with_its_place(line: str, message: str, tmp_path: pathlib.Path) -> None:
    """A bad value ends INVALID with `file:line:col: path: what was expected, got what`
    (a secret masked), and the live config stays."""
    reloader, path = reloader_for("yaml", tmp_path)
    assert path is not None
    with reloader:
        path.write_text(f"bind: 0.0.0.0\n# a comment\n{line}\n")
        result = reloader.reload()
        assert result.outcome is sr.Outcome.INVALID
        assert any(message in str(e) for e in result.errors), result.errors
        if "api_key_id" in line:  # a secret field: its value is never quoted
            assert "not-a-uuid" not in str(result.errors)
        assert reloader.current == EXPECTED


def test_a_change_is_text_in_the_audit_record(tmp_path: pathlib.Path) -> None:
    """Changed values are shown as the text a config file holds them in, and the audit
    record (hash chain included) holds that text."""
    audit = tmp_path / "audit.jsonl"
    reloader, path = reloader_for("json", tmp_path, audit=sr.AuditLog(audit))
    assert path is not None
    with reloader:
        doc = json.loads(DOCS["json"])
        doc.update(allow=["10.0.0.0/8"], price=0.25, quiet_from="06:00", tenant=str(uuid.UUID(int=7)))
        path.write_text(json.dumps(doc))
        result = reloader.reload()
        assert result.outcome is sr.Outcome.APPLIED, result.errors
        assert reloader.current.price == decimal.Decimal("0.25")  # the float's own text, not its binary fraction
        changes = {c.path: c for c in result.applied}
        assert set(changes) == {"allow", "price", "quiet_from", "tenant"}
    assert sr.verify_audit(audit).ok
    record = sr.read_audit(audit)[-1]
    shown = {c["path"]: (c["old"], c["new"]) for c in record["changes"]}
    assert shown == {
        "allow": (["10.0.0.0/8", "192.168.0.0/16"], ["10.0.0.0/8"]),
        "price": ("0.10", "0.25"),
        "quiet_from": ("23:30:00", "06:00:00"),
        "tenant": (UUID, "00000000-0000-0000-0000-000000000007"),
    }
    assert to_plain(EXPECTED)["api_key_id"] == "00000000-0000-0000-0000-000000000001"  # unmasked only here


def test_the_json_schema_describes_them() -> None:
    """The editor schema takes the documents above and refuses what the types refuse."""
    schema = sr.json_schema(Net)
    checker = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert list(checker.iter_errors(json.loads(DOCS["json"]))) == []
    props = schema["properties"]
    assert props["bind"]["format"] == "ipv4" and props["tenant"]["format"] == "uuid"
    assert props["launch"]["format"] == "date" and props["quiet_from"]["format"] == "time"
    assert props["bind"]["default"] == "127.0.0.1" and props["price"]["default"] == "0"
    bad = dict(json.loads(DOCS["json"]), bind="300.1.1.1", tenant="x", launch="2026-13-01")
    assert {e.absolute_path[0] for e in checker.iter_errors(bad)} >= {"bind", "launch"}


S = Structurer(Schema(Net))
VALUES = {
    ipaddress.IPv4Address: st.ip_addresses(v=4),
    ipaddress.IPv6Address: st.ip_addresses(v=6),
    ipaddress.IPv4Network: st.ip_addresses(v=4).map(lambda a: ipaddress.IPv4Network(f"{a}/32")),
    ipaddress.IPv6Network: st.ip_addresses(v=6).map(lambda a: ipaddress.IPv6Network(f"{a}/128")),
    ipaddress.IPv4Interface: st.ip_addresses(v=4).map(lambda a: ipaddress.IPv4Interface(f"{a}/24")),
    ipaddress.IPv6Interface: st.ip_addresses(v=6).map(lambda a: ipaddress.IPv6Interface(f"{a}/64")),
    uuid.UUID: st.uuids(),
    decimal.Decimal: st.decimals(allow_nan=False, allow_infinity=False),
    datetime.date: st.dates(),
    datetime.datetime: st.datetimes(timezones=st.none() | st.just(datetime.UTC)),
    datetime.time: st.times(),
}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(TEXT_TYPES, key=repr)).flatmap(lambda tp: st.tuples(st.just(tp), VALUES[tp])))
def test_the_text_a_value_is_shown_as_reads_back_as_it(case: tuple[type, Any]) -> None:
    """Every value of these types survives the trip a config makes: shown as text (the
    audit, `explain`, a JSON file), read back from that text, from JSON and from env."""
    tp, value = case
    text = to_plain(value)
    assert isinstance(text, str)
    for raw in (text, EnvText(text), json.loads(json.dumps(text))):
        out, issues = S.structure_value(raw, tp, "x")
        assert issues == [] and out == value and type(out) is tp, (raw, out, issues)


class Window:
    """A class of the application's own: selreload has no reader for it."""


@sr.config
class Limits:
    windows: dict[str, Window] = sr.hot(factory=dict)


@sr.config
class Outer:
    limits: Limits = sr.field(factory=Limits)


def test_a_field_type_without_a_reader_is_refused_when_the_reloader_is_made() -> None:
    """Said once, at construction, naming the field; not as an error of every load."""
    with pytest.raises(TypeError, match=r"^Limits\.windows: selreload cannot read a config field of type Window: "):
        sr.Reloader(Outer, registry=CollectorRegistry())

"""No secret is ever shown: one marker (and a one-letter secret) in every kind of secret,
every kind of outcome driven, then every output channel grepped for the marker.

The kinds: a declared secret, a policy-file secret, an undeclared `password` (a credential
rule), a DSN's user-info, a mapping key made secret by policy, a nested secret quoted by a
parent's validator and by `__attrs_post_init__`, a subscriber and an applier that raise
with the marker. The channels: logs (DEBUG, every `selreload*` logger, tracebacks), the
audit file, Prometheus, OpenTelemetry spans, reprs of everything returned, `status()`,
every admin HTTP endpoint (real httpx client, with and without token, errors too) and
every CLI command in-process. The etcd status JSON is built from the same result JSON as
`/status` and the audit record and is covered by `tests/fleet` against a real server.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import logging
import pathlib
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from conftest import write_atomic
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest

import selreload as sr
from selreload._cli import main
from selreload.asgi import admin_app

MARKER = "SECRETMARKER-5b1e"
SHORT = "a"  # a one-letter secret: masking must neither reveal it nor mangle words around it
TOKEN = "admin-token-for-the-test"

SCHEMA = """
import attrs
import selreload as sr


def refuse_bad(inst, attribute, value):
    # A careless validator: its message quotes the value it refuses.
    if value.startswith("bad-"):
        raise ValueError(f"token {value} is not accepted")


def quotes_nested(inst, attribute, value):
    # A parent's validator quoting a nested secret.
    if value.host == "quote-validator":
        raise ValueError(f"database {value.host} refused: password {value.password!r}")


@sr.config
class Db:
    host: str = sr.hot(default="db")
    database: str = sr.hot(default="app")
    password: str = sr.hot(default="")  # undeclared: secret by the credential rules, still hot


@sr.config
class App:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning"]))
    port: int = sr.restart_only(default=8080)
    token: str = sr.secret(default="", hot=True, validator=refuse_bad)  # declared
    signing: str = sr.hot(default="")  # secret by the policy file
    db_url: str = sr.hot(default="")  # a DSN with user-info
    db: Db = sr.hot(factory=Db, validator=quotes_nested)
    flags: dict[str, str] = sr.hot(factory=dict)  # flags.vendor_pin: secret by the policy file

    def __attrs_post_init__(self):
        if self.db.host == "quote-post-init":
            raise ValueError(f"post-init: database password is {self.db.password}")
"""

POLICIES = 'secret: ["signing", "flags.vendor_pin"]\n'


def doc(
    *,
    token: str = MARKER,
    password: str = MARKER,
    host: str = "db",
    level: str = "info",
    signing: str = SHORT,
    pin: str = MARKER,
    port: int = 8080,
    extra: str = "",
) -> str:
    return (
        f"level: {level}\nport: {port}\ntoken: {token}\nsigning: {signing}\n"
        f"db_url: postgresql://app:{MARKER}@db:5432/app\n"
        f"db:\n  host: {host}\n  database: app\n  password: {password}\n{extra}"
        f"flags:\n  vendor_pin: {pin}\n  color: blue\n"
    )


class Leaky:
    """An applier whose exception quotes the DSN (and so the marker) when told to fail."""

    def __init__(self) -> None:
        self.fail = False

    def apply(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.fail:
            raise RuntimeError(f"cannot reach {snapshot.config.db_url} as {snapshot.config.db.password}")

    def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        pass


class Channels:
    """Everything selreload wrote or rendered, as (where, text) pairs."""

    def __init__(self, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.registry = CollectorRegistry()
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.audit_path = tmp_path / "audit.jsonl"
        self.rendered: list[tuple[str, str]] = []
        self.formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")

    def reloader(self, schema: type[Any], path: pathlib.Path) -> sr.Reloader[Any]:
        """A Reloader of `path` with the policy file, recording to these channels."""
        return sr.Reloader(
            schema,
            sources=[sr.YamlFile(path, watch=False)],
            policies=["policies.yaml"],
            audit=sr.AuditLog(self.audit_path),
            registry=self.registry,
            tracer_provider=self.provider,
            name="svc",
        )

    def keep(self, where: str, *objects: Any) -> None:
        for obj in objects:
            self.rendered += [(where, repr(obj)), (where, str(obj))]
            if isinstance(obj, dict | list):
                self.rendered.append((where, json.dumps(obj, default=str)))

    def texts(self) -> Iterator[tuple[str, str]]:
        yield "metrics", generate_latest(self.registry).decode()
        for span in self.exporter.get_finished_spans():
            where = f"span {span.name}"
            yield where, span.name
            yield where + " attributes", json.dumps(dict(span.attributes or {}), default=str)
            yield where + " status", str(span.status.description)
            for event in span.events:
                yield where + " event", event.name + json.dumps(dict(event.attributes or {}), default=str)
        for record in self.caplog.records:
            yield f"log {record.name} {record.levelname}", self.formatter.format(record)  # exc_info included
        yield "audit", self.audit_path.read_text(encoding="utf-8")
        yield from self.rendered

    def leaks(self) -> list[str]:
        return [f"{where}: {text[:400]}" for where, text in self.texts() if "SECRETMARKER" in text]

    def all_text(self) -> str:
        return "\n".join(text for _, text in self.texts())


@pytest.fixture
def work(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    (tmp_path / "secretcfg.py").write_text(SCHEMA, encoding="utf-8")
    (tmp_path / "policies.yaml").write_text(POLICIES, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("secretcfg")
    sys.modules.pop("secretcfg", None)


def http_calls(reloader: sr.Reloader[Any], channels: Channels) -> None:
    """Every admin endpoint, with and without the token, error responses included."""

    async def calls() -> None:
        transport = httpx.ASGITransport(app=admin_app(reloader, token=TOKEN), client=("127.0.0.1", 50123))
        good, bad = {"Authorization": f"Bearer {TOKEN}"}, {"Authorization": "Bearer wrong"}
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for headers in ({}, bad, good):
                for path in ("/config", "/status", "/history", "/metrics"):
                    r = await c.get(path, headers=headers)
                    channels.keep(f"GET {path} {r.status_code}", r.text)
                for path in ("/reload", "/rollback/1", "/rollback/999", "/rollback/x", "/nothing"):
                    r = await c.post(path, headers=headers)
                    channels.keep(f"POST {path} {r.status_code}", r.text)

    asyncio.run(calls())


def cli_calls(tmp_path: pathlib.Path, channels: Channels) -> None:
    """Every CLI command in-process, on valid and invalid files."""
    s, p = ("--schema", "secretcfg:App"), ("--policies", "policies.yaml")
    files = {
        "live.yaml": doc(),
        "next.yaml": doc(token=MARKER + "-next", password=MARKER + "-next", signing="b", pin=MARKER + "x", port=1),
        "bad.yaml": doc(token="bad-" + MARKER, host="quote-validator"),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    commands = [
        ["check", *s, *p, "live.yaml"],
        ["check", *s, *p, "bad.yaml"],
        ["plan", *s, *p, "--from", "live.yaml", "--to", "next.yaml"],
        ["plan", *s, *p, "--json", "--from", "live.yaml", "--to", "next.yaml"],
        ["plan", *s, *p, "--from", "live.yaml", "--to", "bad.yaml"],
        ["explain", *s, *p, "live.yaml"],
        ["explain", *s, *p, "bad.yaml"],
        ["policies", *s, *p],
        ["audit", "show", str(channels.audit_path)],
        ["audit", "show", "--json", str(channels.audit_path)],
        ["audit", "verify", str(channels.audit_path)],
    ]
    for argv in commands:
        out, err = io.StringIO(), io.StringIO()
        code = main(argv, out=out, err=err)
        channels.keep(f"cli {' '.join(argv[:2])} -> {code}", out.getvalue(), err.getvalue())


def test_no_channel_shows_a_secret(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, work: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start, valid, rejected and invalid reloads (a validator on the secret, a parent's
    validator and `__attrs_post_init__` quoting a nested one, a YAML tag on it), a
    rollback by a raising applier, a manual rollback and plans: the marker shows nowhere,
    and the one-letter secret mangles no word."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="selreload")  # whatever level an earlier test left it at
    channels = Channels(tmp_path, caplog)
    path = tmp_path / "config.yaml"
    write_atomic(path, doc())
    r = channels.reloader(work.App, path)
    leaky = Leaky()
    r.on("db.host", leaky)
    r.on("level", lambda changes, snapshot: None)

    def subscriber(result: sr.ReloadResult) -> None:
        raise RuntimeError(f"subscriber saw {r.current.token} and {r.current.db_url}")

    r.subscribe(subscriber)
    r.start()
    assert r.current.token == MARKER and r.current.signing == SHORT  # the secrets really are live

    def reload(expect: sr.Outcome, **kw: Any) -> sr.ReloadResult:
        write_atomic(path, doc(**kw))
        plan = r.plan()
        result = r.reload(trigger="file", actor="ops")
        assert result.outcome is expect, result
        channels.keep(f"reload {expect.value}", result, *result.applied, *result.rejected, *result.errors)
        channels.keep("plan", plan, plan.table(), *plan.steps, *plan.errors)
        channels.keep("state", r.status(), r.snapshot, r.current, *r.history, r.restart_pending)
        return result

    reload(sr.Outcome.APPLIED, level="debug")  # the subscriber raises, quoting the marker
    reload(sr.Outcome.APPLIED, level="debug", token=MARKER + "-rot", password=MARKER + "-rot")
    reload(sr.Outcome.REJECTED, level="debug", token=MARKER + "-rot", password=MARKER + "-rot", signing="b", pin="p")
    bad = reload(sr.Outcome.INVALID, token="bad-" + MARKER)
    assert [str(e.message) for e in bad.errors] == [
        "invalid value (the validator's message is withheld: the value is secret)"
    ]
    nested = reload(sr.Outcome.INVALID, host="quote-validator")
    assert nested.errors[0].path == "db"
    assert nested.errors[0].message.endswith("(ValueError); its message is withheld because it quotes a secret")
    post = reload(sr.Outcome.INVALID, host="quote-post-init")
    assert "App.__attrs_post_init__ failed (ValueError); its message is withheld" in post.errors[0].message
    typo = reload(sr.Outcome.INVALID, level="verbose", extra="  databse: x\n")
    messages = "\n".join(str(e) for e in typo.errors)
    # The one-letter secret `a` is masked structurally: words around it stay whole.
    assert "db.databse: unknown key" in messages and "'database'" in messages
    assert "must be one of debug, info, warning (got 'verbose')" in messages
    leaky.fail = True
    failed = reload(sr.Outcome.ROLLED_BACK, host="db2")
    assert "applier" in str(failed.errors[0]) and "withheld because it quotes a secret" in str(failed.errors[0])
    leaky.fail = False
    back = r.rollback(1, actor="ops")
    assert back.outcome is sr.Outcome.APPLIED and r.current.token == MARKER
    channels.keep("rollback", back, r.status(), r.current, r.plan())

    # Reprs: every kind of secret masked, the DSN's user-info too, words intact.
    text = repr(r.current)
    assert "token=***" in text and "signing=***" in text and "password=***" in text
    assert "'postgresql://app:***@db:5432/app'" in text and "'vendor_pin': ***" in text
    assert "database='app'" in text and "'color': 'blue'" in text

    # A ConfigError at start, from the same invalid files.
    write_atomic(path, doc(token="bad-" + MARKER, host="quote-validator"))
    other = sr.Reloader(work.App, sources=[sr.YamlFile(path, watch=False)], policies=["policies.yaml"], name="x")
    with pytest.raises(sr.ConfigError) as invalid:
        other.start()
    channels.keep("ConfigError", invalid.value, *invalid.value.issues, invalid.value.args, other.status())

    http_calls(r, channels)
    cli_calls(tmp_path, channels)
    r.stop()

    assert sr.verify_audit(channels.audit_path).ok
    records = sr.read_audit(channels.audit_path)
    changes = {c["path"]: c for rec in records for c in rec["changes"]}
    # Masked before the record was hashed: the chain holds no secret to remove.
    assert changes["signing"]["old"] == changes["signing"]["new"] == "***"
    assert changes["flags.vendor_pin"]["new"] == changes["db.password"]["new"] == changes["token"]["new"] == "***"
    everything = channels.all_text()
    # The DSN keeps its user, host and database; only its password is masked (HTTP, explain, repr).
    assert everything.count("postgresql://app:***@db:5432/app") >= 3
    assert "withheld because it quotes a secret" in everything
    assert "subscriber" in everything and "RuntimeError" in everything  # the subscriber's failure was logged
    assert channels.leaks() == []


def invalid_edit(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, work: Any, text: str, what: str
) -> tuple[Channels, sr.ReloadResult, str]:
    """Start on `doc()`, save `text` (which must be INVALID) and reload, then `selreload
    check` it: the channels that saw it all, the result, and what the CLI printed."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="selreload")  # whatever level an earlier test left it at
    channels = Channels(tmp_path, caplog)
    path = tmp_path / "config.yaml"
    write_atomic(path, doc())
    r = channels.reloader(work.App, path)
    with r:
        write_atomic(path, text)
        result = r.reload()
        assert result.outcome is sr.Outcome.INVALID
        channels.keep(what, result, *result.errors, r.status())
    out, err = io.StringIO(), io.StringIO()
    main(["check", "--schema", "secretcfg:App", "config.yaml"], out=out, err=err)
    channels.keep("cli check", out.getvalue(), err.getvalue())
    return channels, result, out.getvalue() + err.getvalue()


def test_a_yaml_tag_error_on_a_secret_does_not_quote_it(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, work: Any
) -> None:
    """`password: !!int <secret>` is INVALID with its place, never the parser's text."""
    channels, _, _ = invalid_edit(tmp_path, caplog, work, doc(password=f"!!int {MARKER}"), "tag")
    assert channels.leaks() == []


@pytest.mark.parametrize(
    "host",
    [f"\n    password: {MARKER}", f"\n    - password: {MARKER}", f"\n    - {MARKER}", f"[{MARKER}]"],
    ids=["mapping", "list of mappings", "list", "flow list"],
)
def test_a_secret_swallowed_by_a_mis_indented_block_is_not_quoted(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, work: Any, host: str
) -> None:
    """`host:` left empty above an indented `password: <secret>` makes host a mapping: the
    error names the place and the shape it found, never the lines it swallowed."""
    channels, result, cli = invalid_edit(tmp_path, caplog, work, doc(host=host), "swallowed")
    # The place is the value's own line (the indented one, or `host:`'s for a flow list).
    assert any(
        re.search(r"config\.yaml:[78]:\d+: db\.host: expected a string, got a (mapping|list) of 1 ", str(e))
        for e in result.errors
    ), result.errors
    assert "db.host" in cli
    assert channels.leaks() == []


def test_the_grep_sees_a_leak(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    """The channel grep is not blind: a marker logged with a traceback is found."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="selreload")  # whatever level an earlier test left it at
    channels = Channels(tmp_path, caplog)
    channels.audit_path.write_text("", encoding="utf-8")
    try:
        raise ValueError(MARKER)
    except ValueError:
        logging.getLogger("selreload.test").debug("failed", exc_info=True)
    assert [leak.split(":")[0] for leak in channels.leaks()] == ["log selreload.test DEBUG"]

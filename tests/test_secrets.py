"""A secret never shows: drive every outcome with secrets set to unique markers and grep
every output channel (metrics, spans, logs, audit, reprs, status, errors) for them."""

from __future__ import annotations

import json
import logging
import os
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest

import selreload as sr

# The second marker extends the first: a scrubber that masks the shorter one first would
# leave "***-rotated-91c2" behind, which the patterns below catch.
M1 = "SECRETMARKER-zq7x"
M2 = "SECRETMARKER-zq7x-rotated-91c2"
PATTERNS = ("SECRETMARKER", "zq7x", "rotated-91c2")  # not hex: hashes never match


def no_colon(inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    # A careless validator: its message quotes the value it refuses.
    if ":" in value:
        raise ValueError(f"{attribute.name} {value!r} must not contain ':' (got {value})")


@sr.config
class Db:
    password: str = sr.secret(default="", hot=True, validator=no_colon)  # rotated live
    host: str = sr.hot(default="db")


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning"]))
    token: str = sr.secret(default="", validator=no_colon)  # restart-only
    db: Db = sr.field(factory=Db)


def doc(token: str, password: str, *, level: str = "info", port: int = 8080, host: str = "db") -> str:
    return f"port: {port}\nlevel: {level}\ntoken: {token}\ndb:\n  password: {password}\n  host: {host}\n"


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Save like a careful editor: temp file, then rename over."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Leaky:
    """An applier whose exceptions quote the secret values it was given (the fault)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fail_apply = False
        self.fail_rollback = False

    def apply(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.fail_apply:
            values = [(c.old, c.new) for c in changes]
            raise RuntimeError(f"cannot apply {values}; snapshot has {snapshot.config.db.password}")

    def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.fail_rollback:
            raise RuntimeError(f"cannot restore {changes[0].old!r} over {changes[0].new}")


class Channels:
    """Everything selreload writes or renders, collected as text."""

    def __init__(self, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.registry = CollectorRegistry()
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.audit_path = tmp_path / "audit.jsonl"
        self.rendered: list[str] = []
        self.formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")

    def keep(self, *objects: Any) -> None:
        """Render objects the way people and tools see them: repr, str, JSON."""
        for obj in objects:
            self.rendered += [repr(obj), str(obj)]
            if isinstance(obj, dict):
                self.rendered.append(json.dumps(obj, default=str))

    def keep_result(self, r: sr.Reloader[App], result: sr.ReloadResult) -> None:
        self.keep(result, *result.applied, *result.rejected, *result.errors, r.status(), r.snapshot, r.current)
        plan = r.plan()
        self.keep(plan, plan.table(), *plan.steps, *plan.errors, *r.history, r.restart_pending)

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
            yield f"log {record.levelname}", self.formatter.format(record)
        if self.audit_path.exists():
            yield "audit", self.audit_path.read_text(encoding="utf-8")
        for i, text in enumerate(self.rendered):
            yield f"rendered[{i}]", text

    def leaks(self) -> list[str]:
        return [f"{where}: {text[:300]}" for where, text in self.texts() for p in PATTERNS if p in text]


@pytest.fixture
def channels(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> Channels:
    caplog.set_level(logging.DEBUG)
    return Channels(tmp_path, caplog)


def test_no_outcome_shows_a_secret(tmp_path: pathlib.Path, channels: Channels) -> None:
    """Applied, rejected, invalid (validator and type errors on the secrets), rolled back
    (exception quoting the secret), degraded and a manual rollback: no channel shows either
    marker, and every outcome really happened."""
    path = tmp_path / "config.yaml"
    write_atomic(path, doc(M1, M1))
    r = sr.Reloader(
        App,
        sources=[sr.YamlFile(path, watch=False)],
        registry=channels.registry,
        tracer_provider=channels.provider,
        audit=sr.AuditLog(channels.audit_path),
        name="svc",
    )
    creds, hosts = Leaky("creds"), Leaky("hosts")
    r.on("db.password", creds)
    r.on("db.host", hosts)
    r.start()
    assert r.current.token == M1  # the marker really is live

    outcomes = []

    def reload(text: str) -> sr.ReloadResult:
        write_atomic(path, text)
        result = r.reload(trigger="file", actor="ops")
        outcomes.append(result.outcome)
        channels.keep_result(r, result)
        return result

    # APPLIED: the hot secret rotates to M2, the restart-only one is rejected.
    assert reload(doc(M2, M2, level="debug")).outcome is sr.Outcome.APPLIED
    assert r.current.db.password == M2
    # REJECTED: only restart-only changes.
    assert reload(doc(M2, M2, level="debug", port=9090)).outcome is sr.Outcome.REJECTED
    # INVALID: the validator of each secret quotes the value it refuses.
    bad = reload(doc(f"'a:{M1}'", f"'b:{M2}'", level="debug"))
    assert bad.outcome is sr.Outcome.INVALID
    assert sorted(e.path for e in bad.errors) == ["db.password", "token"]
    # INVALID: wrong types for both secrets (a list, a mapping).
    bad = reload(doc(f"[{M1}, {M2}]", f"{{k: {M2}}}", level="debug"))
    assert sorted(e.path for e in bad.errors) == ["db.password", "token"]
    # INVALID: a syntax error on the secret's line.
    assert reload(doc(f'"{M1}', M2)).outcome is sr.Outcome.INVALID
    # ROLLED_BACK: the second applier raises, quoting old and new secret values.
    hosts.fail_apply = True
    assert reload(doc(M2, M1, host="db2")).outcome is sr.Outcome.ROLLED_BACK
    # DEGRADED: the first applier's rollback raises too, quoting the secret.
    creds.fail_rollback = True
    assert reload(doc(M2, M1, host="db3")).outcome is sr.Outcome.DEGRADED
    assert r.status()["healthy"] is False
    # A manual rollback to v1 (password back to M1) and a clean applied reload after.
    hosts.fail_apply = creds.fail_rollback = False
    result = r.rollback(1, actor="ops")
    assert result.outcome is sr.Outcome.APPLIED and r.current.db.password == M1
    channels.keep_result(r, result)
    assert reload(doc(M2, M2, level="warning")).outcome is sr.Outcome.APPLIED

    assert set(outcomes) >= {
        sr.Outcome.APPLIED,
        sr.Outcome.REJECTED,
        sr.Outcome.INVALID,
        sr.Outcome.ROLLED_BACK,
        sr.Outcome.DEGRADED,
    }
    assert sr.verify_audit(channels.audit_path).ok
    assert channels.audit_path.read_text().count("***") >= 4
    assert any(s.name == "selreload.rollback" for s in channels.exporter.get_finished_spans())
    assert channels.leaks() == []


def test_start_errors_do_not_show_a_secret(tmp_path: pathlib.Path, channels: Channels) -> None:
    """ConfigError at start (validator and type errors on secrets) and ApplyError at start
    (an applier quoting the secret) render without either marker."""
    path = tmp_path / "config.yaml"
    write_atomic(path, doc(f"'a:{M1}'", f"[{M2}]"))
    r = sr.Reloader(App, sources=[sr.YamlFile(path, watch=False)], registry=channels.registry, name="bad")
    with pytest.raises(sr.ConfigError) as invalid:
        r.start()
    assert sorted(i.path for i in invalid.value.issues) == ["db.password", "token"]
    channels.keep(invalid.value, *invalid.value.issues, invalid.value.args, r.status(), r.plan())

    write_atomic(path, doc(M1, M2))
    r = sr.Reloader(App, sources=[sr.YamlFile(path, watch=False)], registry=channels.registry, name="apply")
    leaky = Leaky("creds")
    leaky.fail_apply = True
    r.on("db.password", leaky)
    with pytest.raises(sr.ApplyError) as failed:
        r.start()
    assert "creds" in str(failed.value)
    channels.keep(failed.value, failed.value.args, r.status())
    assert channels.leaks() == []


def test_the_grep_would_see_a_leak(tmp_path: pathlib.Path, channels: Channels) -> None:
    """The channel grep is not blind: a marker logged or audited on purpose is found."""
    logging.getLogger("selreload").warning("oops %s", M2)
    sr.AuditLog(channels.audit_path).record_denied(config="c", actor=M1, action="x", reason="y")
    found = channels.leaks()
    assert any(f.startswith("log WARNING") for f in found)
    assert any(f.startswith("audit") for f in found)

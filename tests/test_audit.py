"""The audit log: record format, hash chain, fsync, verification of edits, deletions and
swaps, continuation across processes, and two Reloaders sharing one file."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import pathlib
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._audit import GENESIS

FIELDS = [
    "ts",
    "config",
    "instance",
    "version",
    "previous_version",
    "trigger",
    "actor",
    "outcome",
    "changes",
    "errors",
    "digest",
    "prev_hash",
    "hash",
]


@sr.config
class Auth:
    jwt_ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(hours=24))
    jwt_secret: str = sr.secret(default="")


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning"]))
    auth: Auth = sr.field(factory=Auth)
    feature_flags: dict[str, bool] = sr.hot(factory=dict)


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Save like a careful editor: temp file, then rename over."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


BASE = "port: 8080\nauth:\n  jwt_secret: first-secret\n"


def reloader(tmp_path: pathlib.Path, audit: sr.AuditLog, text: str = BASE, **kw: Any) -> sr.Reloader[App]:
    cfg = tmp_path / "config.yaml"
    write_atomic(cfg, text)
    kw.setdefault("registry", CollectorRegistry())
    return sr.Reloader(App, sources=[sr.YamlFile(cfg, watch=False)], audit=audit, **kw)


def reload_with(r: sr.Reloader[App], tmp_path: pathlib.Path, text: str, actor: str | None = None) -> sr.ReloadResult:
    write_atomic(tmp_path / "config.yaml", text)
    return r.reload(trigger="manual", actor=actor)


def lines(path: pathlib.Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_lines(path: pathlib.Path, rows: Sequence[str]) -> None:
    path.write_text("".join(row + "\n" for row in rows), encoding="utf-8")


@pytest.fixture
def trail(tmp_path: pathlib.Path) -> pathlib.Path:
    """An audit file with five chained records: start, applied, rejected, invalid, applied."""
    path = tmp_path / "audit.jsonl"
    r = reloader(tmp_path, sr.AuditLog(path))
    r.start()
    reload_with(r, tmp_path, BASE + "level: debug\n")
    reload_with(r, tmp_path, BASE.replace("8080", "9090") + "level: debug\n")
    reload_with(r, tmp_path, BASE + "level: loud\n")
    reload_with(r, tmp_path, BASE + "level: warning\n")
    assert len(lines(path)) == 5
    return path


def test_record_has_exactly_the_design_fields_in_order(tmp_path: pathlib.Path) -> None:
    """Every record has the documented fields (docs/reference.md), in that order, and nothing else."""
    path = tmp_path / "audit.jsonl"
    r = reloader(tmp_path, sr.AuditLog(path))
    r.start()
    reload_with(r, tmp_path, BASE + "level: debug\n", actor="alice")
    for row in lines(path):
        assert list(json.loads(row)) == FIELDS


def test_applied_record_lists_changes_with_plain_values_and_masks_secrets(tmp_path: pathlib.Path) -> None:
    """An applied reload records hot changes as `apply` and restart-only ones as `reject`,
    durations as text, new mapping keys with old null, and secrets as ***."""
    path = tmp_path / "audit.jsonl"
    r = reloader(tmp_path, sr.AuditLog(path), name="svc")
    r.start()
    text = "port: 9090\nlevel: debug\nauth:\n  jwt_secret: second-secret\n  jwt_ttl: 15m\nfeature_flags: {beta: true}\n"
    result = reload_with(r, tmp_path, text, actor="alice")
    assert result.outcome is sr.Outcome.APPLIED
    rec = sr.read_audit(path)[-1]
    assert rec["config"] == "svc"
    assert (rec["version"], rec["previous_version"]) == (2, 1)
    assert (rec["trigger"], rec["actor"], rec["outcome"]) == ("manual", "alice", "applied")
    assert rec["digest"] == r.snapshot.digest  # type: ignore[union-attr]
    assert rec["errors"] == []
    by_path = {c["path"]: c for c in rec["changes"]}
    assert by_path["level"] == {"path": "level", "old": "info", "new": "debug", "policy": "hot", "action": "apply"}
    assert by_path["auth.jwt_ttl"]["old"] == "1d"
    assert by_path["auth.jwt_ttl"]["new"] == "15m"
    assert by_path["feature_flags.beta"] == {
        "path": "feature_flags.beta",
        "old": None,
        "new": True,
        "policy": "hot",
        "action": "apply",
    }
    assert by_path["port"] == {"path": "port", "old": 8080, "new": 9090, "policy": "restart_only", "action": "reject"}
    assert by_path["auth.jwt_secret"]["old"] == by_path["auth.jwt_secret"]["new"] == "***"
    assert by_path["auth.jwt_secret"]["action"] == "reject"
    assert "secret" not in path.read_text().replace("jwt_secret", "")


def test_unchanged_is_not_recorded_but_invalid_and_rejected_are(tmp_path: pathlib.Path) -> None:
    """UNCHANGED attempts write nothing; INVALID and REJECTED each write one record with
    the live version and digest."""
    path = tmp_path / "audit.jsonl"
    r = reloader(tmp_path, sr.AuditLog(path))
    r.start()
    assert r.reload().outcome is sr.Outcome.UNCHANGED
    assert len(lines(path)) == 1
    bad = reload_with(r, tmp_path, BASE + "level: loud\n")
    assert bad.outcome is sr.Outcome.INVALID
    rejected = reload_with(r, tmp_path, BASE.replace("8080", "9090"))
    assert rejected.outcome is sr.Outcome.REJECTED
    start, invalid, rej = sr.read_audit(path)
    assert start["outcome"] == "applied" and start["trigger"] == "start"
    assert invalid["outcome"] == "invalid" and invalid["version"] == 1 and invalid["changes"] == []
    assert invalid["errors"] == [str(e) for e in bad.errors]
    assert "config.yaml:4:8: level: must be one of" in invalid["errors"][0]
    assert rej["outcome"] == "rejected"
    assert [c["action"] for c in rej["changes"]] == ["reject"]
    assert invalid["digest"] == rej["digest"] == start["digest"]


def test_hash_chain_links_every_record_from_genesis(trail: pathlib.Path) -> None:
    """The first prev_hash is the genesis value, each next one the previous hash, each hash
    is sha256 of the record's compact JSON without `hash`, and the line on disk is exactly
    that JSON with the hash appended."""
    expected = GENESIS
    for row in lines(trail):
        rec = json.loads(row)
        assert rec["prev_hash"] == expected
        body = {k: v for k, v in rec.items() if k != "hash"}
        canonical = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        assert rec["hash"] == hashlib.sha256(canonical.encode()).hexdigest()
        assert row == canonical[:-1] + f',"hash":"{rec["hash"]}"}}'
        expected = rec["hash"]
    result = sr.verify_audit(trail)
    assert result == sr.AuditVerification(True, 5, None, "", expected)


def test_verify_catches_an_edited_record(trail: pathlib.Path) -> None:
    """Changing one value in line 3 is reported at line 3 as an edit."""
    rows = lines(trail)
    rec = json.loads(rows[2])
    rec["actor"] = "mallory"
    rows[2] = json.dumps(rec)
    write_lines(trail, rows)
    result = sr.verify_audit(trail)
    assert (result.ok, result.records, result.first_bad) == (False, 5, 3)
    assert "edited" in result.reason


def test_verify_catches_an_edit_that_recomputes_its_own_hash(trail: pathlib.Path) -> None:
    """An edit that also fixes its own `hash` breaks the next record's prev_hash link."""
    from selreload._audit import record_hash

    rows = lines(trail)
    rec = json.loads(rows[1])
    rec["outcome"] = "rejected"
    rec["hash"] = record_hash(rec)
    rows[1] = json.dumps(rec)
    write_lines(trail, rows)
    result = sr.verify_audit(trail)
    assert (result.ok, result.first_bad) == (False, 3)
    assert "removed, inserted or moved" in result.reason


def test_verify_catches_a_deleted_record(trail: pathlib.Path) -> None:
    """Deleting line 2 is reported at line 2 (the record now there does not follow line 1)."""
    rows = lines(trail)
    del rows[1]
    write_lines(trail, rows)
    result = sr.verify_audit(trail)
    assert (result.ok, result.records, result.first_bad) == (False, 4, 2)
    assert "removed" in result.reason


def test_verify_catches_a_deleted_first_record(trail: pathlib.Path) -> None:
    """Deleting the first record is reported at line 1: it no longer starts at genesis."""
    write_lines(trail, lines(trail)[1:])
    result = sr.verify_audit(trail)
    assert (result.ok, result.first_bad) == (False, 1)
    assert "start of the file" in result.reason


def test_verify_catches_two_swapped_records(trail: pathlib.Path) -> None:
    """Swapping lines 3 and 4 is reported at line 3."""
    rows = lines(trail)
    rows[2], rows[3] = rows[3], rows[2]
    write_lines(trail, rows)
    result = sr.verify_audit(trail)
    assert (result.ok, result.first_bad) == (False, 3)
    assert "moved" in result.reason


def test_truncating_the_tail_is_only_caught_by_the_kept_head(trail: pathlib.Path) -> None:
    """Dropping the last record leaves a valid shorter chain: its last_hash no longer
    equals the writer's head, which is how an anchored copy catches it."""
    head = sr.AuditLog(trail).head
    write_lines(trail, lines(trail)[:-1])
    result = sr.verify_audit(trail)
    assert result.ok and result.records == 4
    assert result.last_hash != head


def test_verify_reports_garbage_and_blank_lines(tmp_path: pathlib.Path, trail: pathlib.Path) -> None:
    """A line that is not JSON or not a record is reported at its line number."""
    rows = lines(trail)
    write_lines(trail, [*rows[:2], "not json", *rows[2:]])
    assert sr.verify_audit(trail).first_bad == 3
    write_lines(trail, [*rows[:1], "", *rows[1:]])
    assert sr.verify_audit(trail).first_bad == 2
    write_lines(trail, [*rows[:1], "[1, 2]", *rows[1:]])
    bad = sr.verify_audit(trail)
    assert (bad.first_bad, bad.reason) == (2, "not an audit record (no hash)")
    assert str(bad) == "line 2: not an audit record (no hash)"


def test_an_empty_file_verifies(tmp_path: pathlib.Path) -> None:
    """An empty audit file is a valid (empty) chain."""
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert sr.verify_audit(path) == sr.AuditVerification(True, 0)
    assert sr.read_audit(path) == []


def test_read_audit_names_the_bad_line_and_skips_torn_ones(trail: pathlib.Path) -> None:
    """read_audit returns the records in order, skips a torn line (a write cut short) and
    names file:line:col of a line that is no record at all."""
    assert [r["version"] for r in sr.read_audit(trail)] == [1, 2, 2, 2, 3]
    rows = lines(trail)
    write_lines(trail, [*rows[:3], '{"ts": "2026-01-01T00:0', *rows[3:]])
    assert [r["version"] for r in sr.read_audit(trail)] == [1, 2, 2, 2, 3]
    write_lines(trail, [*rows[:3], 'x{"ts": ', *rows[3:]])
    with pytest.raises(ValueError, match=r"audit\.jsonl:4:1: not a JSON record"):
        sr.read_audit(trail)


def test_an_existing_file_is_continued_by_another_process(trail: pathlib.Path) -> None:
    """A fresh process opening an existing file chains its first record to the last one
    there, and this process then chains to the record the other one wrote."""
    before = sr.read_audit(trail)[-1]["hash"]
    code = (
        "import sys, selreload as sr\n"
        "sr.AuditLog(sys.argv[1]).record_denied(config='c', actor='127.0.0.1', action='POST /reload',"
        " reason='missing bearer token')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(trail)], check=True, timeout=60)
    records = sr.read_audit(trail)
    assert records[-1]["prev_hash"] == before
    sr.AuditLog(trail).record_denied(config="c", actor=None, action="POST /rollback/1", reason="wrong token")
    records = sr.read_audit(trail)
    assert records[-1]["prev_hash"] == records[-2]["hash"]
    assert sr.verify_audit(trail).ok


def test_record_denied_is_chained_like_any_record(tmp_path: pathlib.Path) -> None:
    """record_denied writes outcome `denied` with the action as trigger and the reason as
    its error, in the same chain as reload records."""
    path = tmp_path / "audit.jsonl"
    audit = sr.AuditLog(path)
    r = reloader(tmp_path, audit, name="svc")
    r.start()
    rec = audit.record_denied(
        config="svc", actor="10.0.0.7", action="POST /reload", reason="wrong token", version=1, digest="d"
    )
    assert rec is not None
    assert list(rec) == [*FIELDS[:-2], "count", *FIELDS[-2:]]
    assert rec["count"] == 1
    assert rec["outcome"] == "denied" and rec["trigger"] == "POST /reload"
    assert rec["errors"] == ["wrong token"] and rec["changes"] == []
    assert rec["version"] == rec["previous_version"] == 1
    assert sr.read_audit(path)[-1] == rec
    assert rec["prev_hash"] == sr.read_audit(path)[0]["hash"]
    assert sr.verify_audit(path).ok


def test_two_reloaders_on_one_file_from_many_threads_keep_one_chain(tmp_path: pathlib.Path) -> None:
    """Two Reloaders (each with its own AuditLog on the same path, one through a different
    spelling of it) reloading concurrently write interleaved but fully chained records."""
    path = tmp_path / "audit.jsonl"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ra = reloader(tmp_path / "a", sr.AuditLog(path), name="a")
    rb = reloader(tmp_path / "b", sr.AuditLog(tmp_path / "b" / ".." / "audit.jsonl"), name="b")
    ra.start()
    rb.start()
    rounds = 25

    def churn(r: sr.Reloader[App], where: pathlib.Path) -> None:
        for i in range(rounds):
            reload_with(r, where, BASE + f"level: {['debug', 'warning'][i % 2]}\n")

    threads = [
        threading.Thread(target=churn, args=(ra, tmp_path / "a")),
        threading.Thread(target=churn, args=(rb, tmp_path / "b")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    result = sr.verify_audit(path)
    assert result.ok, result
    assert result.records == 2 * (rounds + 1)
    configs = [r["config"] for r in sr.read_audit(path)]
    assert configs.count("a") == configs.count("b") == rounds + 1


def test_every_record_is_fsynced(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each record is followed by an fsync of the audit file (fsync=False skips it)."""
    calls: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    path = tmp_path / "audit.jsonl"
    audit = sr.AuditLog(path, denial_window=0)  # every denial its own record
    audit.record_denied(config="c", actor=None, action="x", reason="y")  # creates the file
    monkeypatch.setattr(os, "fsync", spy)
    for _ in range(3):
        audit.record_denied(config="c", actor=None, action="x", reason="y")
    assert len(calls) == 3
    assert all(os.path.samefile(f"/proc/self/fd/{fd}", path) for fd in set(calls))
    sr.AuditLog(path, fsync=False).record_denied(config="c", actor=None, action="x", reason="y")
    assert len(calls) == 3


def test_a_torn_last_line_is_reported_and_the_chain_goes_on(trail: pathlib.Path) -> None:
    """After a crash mid-write (a last line without newline), the next record starts on its
    own line and chains to the last intact record; verify reports the torn line."""
    intact = sr.read_audit(trail)[-1]["hash"]
    with open(trail, "ab") as fh:
        fh.write(b'{"ts": "2026-01-01T00:00:00+00:00", "conf')
    rec = sr.AuditLog(trail).record_denied(config="c", actor=None, action="x", reason="y")
    assert rec["prev_hash"] == intact
    rows = lines(trail)
    assert len(rows) == 7 and json.loads(rows[-1]) == rec
    result = sr.verify_audit(trail)
    assert (result.ok, result.first_bad, result.torn, result.tampered) == (True, None, (6,), ())
    assert result.last_hash == rec["hash"]
    assert [(p.line, p.kind) for p in result.problems] == [(6, "torn")]
    assert str(result).endswith("1 torn line skipped (6)")


def test_a_rotated_file_starts_a_new_chain(trail: pathlib.Path) -> None:
    """When the file is renamed away (log rotation), the next record starts a new file at
    genesis and both files verify."""
    audit = sr.AuditLog(trail)
    audit.record_denied(config="c", actor=None, action="x", reason="before")
    old = trail.with_suffix(".1")
    trail.rename(old)
    rec = audit.record_denied(config="c", actor=None, action="x", reason="after")
    assert rec["prev_hash"] == GENESIS
    assert sr.verify_audit(old).ok and sr.verify_audit(old).records == 6
    assert sr.verify_audit(trail) == sr.AuditVerification(True, 1, last_hash=rec["hash"])


def test_new_audit_file_is_private(tmp_path: pathlib.Path) -> None:
    """A new audit file is created readable by its owner only (mode 0600)."""
    path = tmp_path / "audit.jsonl"
    sr.AuditLog(path).record_denied(config="c", actor=None, action="x", reason="y")
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_unwritable_audit_with_degrade_commits_and_says_so(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With `on_audit_failure="degrade"`, a reload whose record cannot be written still
    commits; the failure is logged as an error and status() is unhealthy, saying why."""
    r = reloader(tmp_path, sr.AuditLog(tmp_path / "missing-dir" / "audit.jsonl"), on_audit_failure="degrade")
    with caplog.at_level(logging.ERROR, logger="selreload"):
        r.start()
        result = reload_with(r, tmp_path, BASE + "level: debug\n")
    assert result.outcome is sr.Outcome.APPLIED and r.current.level == "debug"
    assert any("could not be written" in rec.getMessage() for rec in caplog.records)
    status = r.status()
    assert status["healthy"] is False
    assert status["unhealthy_reasons"] == ["the audit record could not be written (No such file or directory)"]


def test_repr_names_the_file(tmp_path: pathlib.Path) -> None:
    """AuditLog's repr shows its path."""
    assert repr(sr.AuditLog(tmp_path / "a.jsonl")) == f"AuditLog({str(tmp_path / 'a.jsonl')!r})"


def test_rolled_back_record_names_what_was_undone(tmp_path: pathlib.Path) -> None:
    """A ROLLED_BACK record lists the hot changes the transaction tried, action rolled_back."""
    log = sr.AuditLog(tmp_path / "audit.jsonl")
    r = reloader(tmp_path, log)

    def refuse(changes: Any, snapshot: Any) -> None:
        if changes[0].old is not sr.UNSET:
            raise RuntimeError("downstream refused")

    r.on("level", refuse)
    with r:
        result = reload_with(r, tmp_path, BASE + "level: debug\n", actor="ops")
    assert result.outcome is sr.Outcome.ROLLED_BACK
    last = sr.read_audit(tmp_path / "audit.jsonl")[-1]
    assert last["outcome"] == "rolled_back"
    assert last["changes"] == [
        {"path": "level", "old": "info", "new": "debug", "policy": "hot", "action": "rolled_back"}
    ]
    assert sr.verify_audit(tmp_path / "audit.jsonl").ok

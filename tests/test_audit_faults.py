"""The audit log under faults caused for real: torn lines, kill -9, a full tmpfs,
/dev/full, a file size limit, forked writers, a verify racing appends, a rewrite against
the keyed chain, and a flood of denials."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import pathlib
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._audit import GENESIS, HMAC_SHA256, audit_head, canonical
from selreload._cli import main
from selreload._metrics import Metrics

ROOT = pathlib.Path(__file__).parent.parent

# A fresh interpreter's preamble: the worktree on the path, a helper that appends one
# denial (every denial its own record: denial_window=0) of about `size` bytes.
PRELUDE = f"""
import json, os, signal, sys, time
sys.path.insert(0, {str(ROOT)!r})
import selreload as sr
def deny(log, i, size=200, config="c"):
    return log.record_denied(config=config, actor=f"w{{os.getpid()}}", action="POST /reload",
                             reason=f"r{{i}} " + "x" * size)
"""


def run(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + code, *args], capture_output=True, text=True, timeout=timeout, check=True
    )


def deny(log: sr.AuditLog, i: int, size: int = 200) -> dict[str, Any]:
    rec = log.record_denied(config="c", actor="a", action="POST /reload", reason=f"r{i} " + "x" * size)
    assert rec is not None
    return rec


def rows(path: pathlib.Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def test_torn_line_then_appends_then_an_edit_is_still_caught(tmp_path: pathlib.Path) -> None:
    """Half a record written by hand (a crash mid-write), then more appends, then an edit of
    a later record: verify names the torn line as torn and the edited one as tampered; the
    record after the torn line chains to the last intact one."""
    path = tmp_path / "audit.jsonl"
    log = sr.AuditLog(path, denial_window=0)
    intact = [deny(log, i) for i in range(3)]
    whole = json.dumps(intact[-1]).encode()
    with open(path, "ab") as fh:
        fh.write(whole[: len(whole) // 2])
    after = [deny(sr.AuditLog(path, denial_window=0), i) for i in range(3, 7)]
    assert after[0]["prev_hash"] == intact[-1]["hash"]
    assert sr.verify_audit(path).torn == (4,) and sr.verify_audit(path).ok
    lines = rows(path)
    edited = json.loads(lines[6])
    edited["actor"] = "mallory"
    lines[6] = json.dumps(edited, ensure_ascii=False, separators=(",", ":")).encode()
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    result = sr.verify_audit(path)
    assert (result.ok, result.torn, result.tampered, result.first_bad) == (False, (4,), (7,), 7)
    assert [(p.line, p.kind) for p in result.problems] == [(4, "torn"), (7, "tampered")]
    assert "edited" in result.reason
    # audit show prints the intact records and marks the torn one.
    out, err = io.StringIO(), io.StringIO()
    assert main(["audit", "show", str(path)], out=out, err=err) == 0
    text = out.getvalue()
    assert "-- line 4: TORN: torn line" in text and "-- line 7: TAMPERED:" in text
    assert text.count("DENIED") == 7
    assert main(["audit", "verify", str(path)], out=out, err=(err := io.StringIO())) == 1
    assert f"{path}:4: torn line" in err.getvalue() and "TAMPERED: the hash chain breaks at line 7" in err.getvalue()


def test_a_torn_file_verifies_clean_from_the_cli_and_head_prints_the_last_hash(tmp_path: pathlib.Path) -> None:
    """`audit verify` exits 0 on a chain whose only faults are torn lines and names them;
    `audit head` prints the hash of the last intact record."""
    path = tmp_path / "audit.jsonl"
    log = sr.AuditLog(path, denial_window=0)
    deny(log, 0)
    with open(path, "ab") as fh:
        fh.write(b'{"ts":"2026-01-01T00:00:00+00:00","config":"c","ver')
    last = deny(log, 1)
    with open(path, "ab") as fh:
        fh.write(b'{"ts":"2026-01-01T00:00:00+00:00","con\xc3')  # cut inside a UTF-8 character
    out, err = io.StringIO(), io.StringIO()
    assert main(["audit", "verify", str(path)], out=out, err=err) == 0
    assert "ok: 4 records, chain intact" in out.getvalue() and "2 torn lines skipped (2, 4)" in out.getvalue()
    assert err.getvalue().count("torn line") == 2
    assert main(["audit", "head", str(path)], out=(out := io.StringIO()), err=err) == 0
    assert out.getvalue() == last["hash"] + "\n" == audit_head(path) + "\n"
    assert [r["hash"] for r in sr.read_audit(path)][-1] == last["hash"]


KILL_LOOP = """
path, rounds = sys.argv[1], int(sys.argv[2])
import random
random.seed(7)
killed = 0
sr.AuditLog  # load it now (selreload's names load on first use), not in each child before it is killed
for n in range(rounds):
    pid = os.fork()
    if pid == 0:  # a writer appending in a loop until killed
        log = sr.AuditLog(path, denial_window=0, fsync=False)
        i = 0
        while True:
            deny(log, i, size=random.choice([100, 5000, 400000]))
            i += 1
    time.sleep(random.uniform(0.005, 0.03))
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    killed += os.WIFSIGNALED(status)
print(killed)
"""


def test_kill_9_of_an_appending_process_30_times_leaves_a_clean_chain(tmp_path: pathlib.Path) -> None:
    """30 writer processes, each killed with SIGKILL mid-loop (records up to 400 KB, so
    some die inside a write): the file verifies with no tampering, only torn lines, and
    every torn line is followed by a record chained to the last intact one."""
    path = tmp_path / "audit.jsonl"
    assert run(KILL_LOOP, str(path), "30").stdout.strip() == "30"
    result = sr.verify_audit(path)
    assert result.ok, result
    assert result.tampered == ()
    assert result.records > 30
    assert len(sr.read_audit(path)) == result.records - len(result.torn)


@pytest.fixture
def small_tmpfs(tmp_path: pathlib.Path) -> Any:
    """A 64 KiB tmpfs: a real full disk."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs under CI: {done.stderr!r}")
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr!r}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_enospc_on_a_full_tmpfs_raises_and_the_chain_resumes(small_tmpfs: pathlib.Path) -> None:
    """Appends to a full 64 KiB tmpfs raise AuditWriteError (ENOSPC): the head does not
    advance, no fragment is left, and once space is freed the next record chains to the
    last one written; verify is clean."""
    filler = small_tmpfs / "filler"
    filler.write_bytes(b"\0" * 24 * 1024)
    path = small_tmpfs / "audit.jsonl"
    log = sr.AuditLog(path, denial_window=0)
    written = 0
    with pytest.raises(sr.AuditWriteError) as caught:
        for i in range(1000):
            deny(log, i, size=3000)
            written += 1
    assert written > 3
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert str(caught.value).startswith(f"{path}: cannot write the audit record: ")
    assert caught.value.record["errors"][0].startswith(f"r{written} ")
    head = log.head
    assert head == sr.read_audit(path)[-1]["hash"]
    with pytest.raises(sr.AuditWriteError):
        deny(log, -1, size=3000)
    assert log.head == head
    assert path.read_bytes().endswith(b"}\n")  # the partial write was cut back
    filler.unlink()
    rec = deny(log, written, size=3000)
    assert rec["prev_hash"] == head
    result = sr.verify_audit(path)
    assert result.ok and result.torn == () and result.records == written + 1


def test_dev_full_raises_and_the_head_stays(tmp_path: pathlib.Path) -> None:
    """Writing to /dev/full raises AuditWriteError with ENOSPC; the head stays GENESIS,
    and record() of a reload raises the same."""
    log = sr.AuditLog("/dev/full", denial_window=0)
    with pytest.raises(sr.AuditWriteError) as caught:
        deny(log, 0)
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, sr.SelreloadError)
    assert log.head == GENESIS


EFBIG = """
path = sys.argv[1]
import resource
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
log = sr.AuditLog(path, denial_window=0)
for i in range(3):
    deny(log, i)
head, size = log.head, os.path.getsize(path)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, hard))
out = {}
try:
    deny(log, 3, size=1000)
except sr.AuditWriteError as exc:
    out["errno"] = exc.errno
out["head_kept"] = log.head == head
out["size_kept"] = os.path.getsize(path) == size
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
out["chained"] = deny(log, 4)["prev_hash"] == head
print(json.dumps(out))
"""


def test_efbig_under_a_file_size_limit_raises_and_the_chain_resumes(tmp_path: pathlib.Path) -> None:
    """In a child under RLIMIT_FSIZE (SIGXFSZ ignored) a record past the limit raises
    AuditWriteError (EFBIG), the head and the file size stay, and after the limit is
    lifted the next record chains to the last written one. The failed denial kept its
    count, written at exit."""
    path = tmp_path / "audit.jsonl"
    out = json.loads(run(EFBIG, str(path)).stdout)
    assert out == {"errno": errno.EFBIG, "head_kept": True, "size_kept": True, "chained": True}
    result = sr.verify_audit(path)
    assert result.ok and result.records == 5 and result.torn == ()
    assert [r["errors"][0].split()[0] for r in sr.read_audit(path)] == ["r0", "r1", "r2", "r4", "r3"]


FORK = """
path, n = sys.argv[1], int(sys.argv[2])
log = sr.AuditLog(path)
for i in range(3):
    deny(log, i, config="parent")
pids = []
for child in range(4):
    pid = os.fork()
    if pid == 0:
        for i in range(n):
            deny(log, i, config=f"child{child}")
        os._exit(0)
    pids.append(pid)
for i in range(n):
    deny(log, i, config="parent")
print(sum(os.waitpid(pid, 0)[1] for pid in pids))
"""


def test_forked_children_appending_concurrently_keep_one_chain(tmp_path: pathlib.Path) -> None:
    """os.fork() after writes, 4 children and the parent appending at once (real
    processes, fsync on): one intact chain holding every record."""
    path = tmp_path / "audit.jsonl"
    n = 40
    assert run(FORK, str(path), str(n)).stdout.strip() == "0"
    result = sr.verify_audit(path)
    assert result.ok and result.torn == () and result.records == 3 + 5 * n, result
    configs = [r["config"] for r in sr.read_audit(path)]
    assert configs.count("parent") == 3 + n
    assert all(configs.count(f"child{c}") == n for c in range(4))


APPEND_FOR = """
path, seconds = sys.argv[1], float(sys.argv[2])
log = sr.AuditLog(path, denial_window=0, fsync=False)
end = time.monotonic() + seconds
i = 0
while time.monotonic() < end:
    deny(log, i, size=(i % 7) * 20000)
    i += 1
print(i)
"""


def test_a_verify_racing_appends_never_reports_tampering(tmp_path: pathlib.Path) -> None:
    """verify_audit run over and over while another process appends (records up to
    120 KB) never sees a half-written record: no tampered and no torn line."""
    path = tmp_path / "audit.jsonl"
    deny(sr.AuditLog(path, denial_window=0), 0)
    writer = subprocess.Popen([sys.executable, "-c", PRELUDE + APPEND_FOR, str(path), "1.5"])
    runs = 0
    try:
        while writer.poll() is None:
            result = sr.verify_audit(path)
            assert result.ok and result.torn == (), result
            runs += 1
    finally:
        writer.wait(timeout=30)
    assert writer.returncode == 0 and runs >= 5
    assert sr.verify_audit(path).records > 20


def _rewrite_keyless(path: pathlib.Path) -> None:
    """What an attacker without the key can do: edit a record, drop `alg`, and recompute
    every plain sha256 hash."""
    prev = GENESIS
    out = []
    for i, line in enumerate(rows(path)):
        rec = json.loads(line)
        rec.pop("alg", None)
        rec.pop("hash")
        if i == 1:
            rec["actor"] = "mallory"
        rec["prev_hash"] = prev
        rec["hash"] = prev = hashlib.sha256(canonical(rec)).hexdigest()
        out.append(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
    path.write_text("".join(line + "\n" for line in out), encoding="utf-8")


def test_the_keyed_chain_catches_a_full_rewrite(tmp_path: pathlib.Path) -> None:
    """With a key, records say `alg: hmac-sha256` and verify only with that key; after a
    rewrite recomputing every plain hash the keyless verify passes and the keyed one fails,
    from the API and the CLI (--key-file)."""
    path = tmp_path / "audit.jsonl"
    key_file = tmp_path / "audit.key"
    key_file.write_text("s3cret-audit-key\n")
    log = sr.AuditLog(path, key_file=key_file, denial_window=0)
    assert log.keyed and "keyed" in repr(log)
    recs = [deny(log, i) for i in range(4)]
    assert all(r["alg"] == HMAC_SHA256 for r in recs)
    assert list(recs[0])[-3:] == ["alg", "prev_hash", "hash"]
    assert sr.verify_audit(path, key=b"s3cret-audit-key").ok
    assert sr.verify_audit(path, key_file=key_file).last_hash == log.head
    wrong = sr.verify_audit(path, key="another-key")
    assert not wrong.ok and wrong.tampered == (1, 2, 3, 4)
    unkeyed = sr.verify_audit(path)
    assert not unkeyed.ok and unkeyed.tampered == () and [p.kind for p in unkeyed.problems] == ["keyed"] * 4
    out, err = io.StringIO(), io.StringIO()
    assert main(["audit", "verify", str(path)], out=out, err=err) == 1
    assert "keyed (hmac-sha256) records not checked: pass --key-file" in err.getvalue()
    assert main(["audit", "verify", str(path), "--key-file", str(key_file)], out=out, err=err) == 0

    _rewrite_keyless(path)
    assert sr.verify_audit(path).ok  # the plain chain is consistent again
    rewritten = sr.verify_audit(path, key_file=key_file)
    assert not rewritten.ok and rewritten.tampered == (1, 2, 3, 4)
    assert "not keyed" in rewritten.reason
    assert main(["audit", "verify", str(path), "--key-file", str(key_file)], out=out, err=(err := io.StringIO())) == 1
    assert "TAMPERED" in err.getvalue()


def test_keyed_records_continue_a_keyed_file_across_processes(tmp_path: pathlib.Path) -> None:
    """Another process with the same key continues the keyed chain; an empty key is refused."""
    path = tmp_path / "audit.jsonl"
    deny(sr.AuditLog(path, key="k" * 32, denial_window=0), 0)
    run("deny(sr.AuditLog(sys.argv[1], key='k' * 32, denial_window=0), 1)", str(path))
    assert sr.verify_audit(path, key="k" * 32).records == 2 and sr.verify_audit(path, key="k" * 32).ok
    with pytest.raises(ValueError, match="empty"):
        sr.AuditLog(path, key="")


def test_a_thousand_denials_coalesce_into_few_records_with_counts(tmp_path: pathlib.Path) -> None:
    """1,000 denials in a tight loop write a bounded number of records (one per window per
    actor and reason), whose counts sum to 1,000 once close() flushes the pending count."""
    path = tmp_path / "audit.jsonl"
    log = sr.AuditLog(path)
    start = time.monotonic()
    written = []
    for _ in range(1000):
        rec = log.record_denied(config="c", actor="10.0.0.9", action="POST /reload", reason="missing bearer token")
        if rec is not None:
            written.append(rec)
    windows = int(time.monotonic() - start) + 1
    assert 1 <= len(written) <= windows
    log.close()
    records = sr.read_audit(path)
    assert len(records) <= windows + 1
    assert sum(r["count"] for r in records) == 1000
    assert sr.verify_audit(path).ok


def test_a_denial_after_the_window_carries_the_pending_count(tmp_path: pathlib.Path) -> None:
    """Denials inside the window are counted; the next one after it writes a record whose
    count includes them; another actor or reason gets its own record at once."""
    path = tmp_path / "audit.jsonl"
    log = sr.AuditLog(path, denial_window=0.2)

    def denied(actor: str = "a", reason: str = "wrong bearer token") -> dict[str, Any] | None:
        return log.record_denied(config="c", actor=actor, action="POST /rollback/1", reason=reason)

    first = denied()
    assert first is not None and first["count"] == 1
    assert denied() is None and denied() is None
    other = denied(actor="b")
    assert other is not None and other["count"] == 1
    assert denied(reason="missing bearer token") is not None
    time.sleep(0.25)
    later = denied()
    assert later is not None and later["count"] == 3
    assert log.flush() == []
    assert [r["count"] for r in sr.read_audit(path)] == [1, 1, 1, 3]


def test_a_failed_denial_record_keeps_its_count(tmp_path: pathlib.Path) -> None:
    """A denial record that cannot be written raises and its count goes into the next one."""
    path = tmp_path / "gone" / "audit.jsonl"
    log = sr.AuditLog(path)
    with pytest.raises(sr.AuditWriteError) as caught:
        log.record_denied(config="c", actor="a", action="x", reason="y")
    assert caught.value.errno == errno.ENOENT
    path.parent.mkdir()
    rec = log.record_denied(config="c", actor="a", action="x", reason="y")
    assert rec is not None and rec["count"] == 2


def test_verify_streams_in_bounded_memory(tmp_path: pathlib.Path) -> None:
    """Verifying 20,000 records allocates far less than the file's size (it streams)."""
    path = tmp_path / "audit.jsonl"
    prev = GENESIS
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(20_000):
            rec = {"ts": "2026-01-01T00:00:00+00:00", "config": "c", "version": i, "errors": ["e" * 200]}
            rec["prev_hash"] = prev
            body = canonical(rec)
            prev = hashlib.sha256(body).hexdigest()
            fh.write(body.decode()[:-1] + f',"hash":"{prev}"}}\n')
    tracemalloc.start()
    try:
        result = sr.verify_audit(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.ok and result.records == 20_000 and result.last_hash == prev
    assert peak < path.stat().st_size / 10


def test_audit_failures_counter_exists_with_a_zero_series() -> None:
    """selreload_audit_failures_total{config} is 0 from the start; audit_failed() adds one."""
    registry = CollectorRegistry()
    metrics = Metrics("svc", registry)
    assert registry.get_sample_value("selreload_audit_failures_total", {"config": "svc"}) == 0.0
    metrics.audit_failed()
    assert registry.get_sample_value("selreload_audit_failures_total", {"config": "svc"}) == 1.0

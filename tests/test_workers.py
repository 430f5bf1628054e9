"""Every worker, one config: the control directory in-process, then real uvicorn and gunicorn workers."""

from __future__ import annotations

import logging
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._statedir import StateDir
from selreload._workers import set_overrides
from tests.conftest import write_atomic

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKEN = "t0ken"


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(step)
    return predicate()


@sr.config
class Logging:
    level: str = sr.hot(default="info")


@sr.config
class App:
    message: str = sr.hot(default="a")
    logging: Logging = sr.field(factory=Logging)
    port: int = sr.restart_only(default=1)


def workers(tmp_path: pathlib.Path, n: int = 3, **kw: Any) -> list[sr.Reloader[App]]:
    cfg = tmp_path / "config.yaml"
    if not cfg.exists():
        write_atomic(cfg, "message: one\n")
    return [
        sr.Reloader(
            App,
            [sr.YamlFile(cfg)],
            state_dir=tmp_path / "state",
            instance=f"w{i}",
            registry=CollectorRegistry(),
            **kw,
        )
        for i in range(n)
    ]


# --- in-process: several Reloaders sharing one directory ---------------------------------


def test_an_override_reaches_every_worker_then_expires_everywhere(tmp_path: pathlib.Path) -> None:
    """A set with a ttl is live in every worker when set() returns, with origin
    override:<actor>@<ts> and shown in status(); it reverts by itself at the expiry."""
    rs = workers(tmp_path)
    for r in rs:
        r.start()
    try:
        answer = rs[0].workers.set({"message": "over"}, actor="alice", ttl=0.5)  # type: ignore[union-attr]
        assert answer.complete and len(answer.acked) == 3, answer.summary()
        assert [r.current.message for r in rs] == ["over"] * 3
        assert rs[1].snapshot is not None and rs[1].snapshot.origins["message"].startswith("override:alice@")
        (shown,) = rs[2].status()["overrides"]
        assert shown["path"] == "message" and shown["actor"] == "alice" and shown["expires"]
        assert wait_for(lambda: [r.current.message for r in rs] == ["one"] * 3, timeout=3)
        assert all(r.status()["overrides"] == [] for r in rs)
    finally:
        for r in rs:
            r.stop()


def test_a_restart_only_or_invalid_override_is_refused_before_anything_is_written(tmp_path: pathlib.Path) -> None:
    """set() checks the path's policy and the value's validation first: nothing is written."""
    (r,) = rs = workers(tmp_path, 1)
    r.start()
    try:
        with pytest.raises(sr.ConfigError, match="restart-only"):
            r.workers.set({"port": 9}, actor="a")  # type: ignore[union-attr]
        with pytest.raises(sr.ConfigError, match="no config field"):
            r.workers.set({"mesage": "x"}, actor="a")  # type: ignore[union-attr]
        with pytest.raises(sr.ConfigError):
            r.workers.set({"message": 5}, actor="a")  # type: ignore[union-attr]
        assert StateDir(tmp_path / "state").read_overrides()["seq"] == 0
    finally:
        for x in rs:
            x.stop()


def test_an_override_a_worker_refuses_is_taken_back_out(tmp_path: pathlib.Path) -> None:
    """Written without the check (the CLI without --schema): the workers NACK a restart-only
    path, and the entry is removed so later reloads are not blocked by it."""
    rs = workers(tmp_path, 2)
    for r in rs:
        r.start()
    try:
        state = StateDir(tmp_path / "state")
        answer = set_overrides(state, {"port": 9}, actor="cli", timeout=3)
        assert len(answer.refused) == 2 and not answer.acked
        assert state.read_overrides()["entries"] == []
        assert [r.current.port for r in rs] == [1, 1]
    finally:
        for r in rs:
            r.stop()


def test_rollback_by_digest_reaches_every_worker(tmp_path: pathlib.Path) -> None:
    """Versions are per process; a rollback goes out as the digest the version names here,
    and every worker finds its own snapshot with that digest."""
    rs = workers(tmp_path)
    rs[0].start()
    write_atomic(tmp_path / "config.yaml", "message: two\n")
    rs[0].reload()
    for r in rs[1:]:
        r.start()  # started later: their v1 is "two", but "one" is not in their history
    try:
        first = rs[0].history[0]
        answer = rs[0].workers.rollback(1, actor="ops")  # type: ignore[union-attr]
        assert len(answer.acked) == 1 and len(answer.refused) == 2, answer.summary()
        assert rs[0].current.message == "one"
        assert all("not in history" in r.get("command_errors")[0] for r in answer.refused)
        answer = rs[1].workers.rollback(rs[1].snapshot.digest, actor="ops")  # type: ignore[union-attr]
        assert answer.complete and [r.current.message for r in rs] == ["two"] * 3
        assert rs[0].find_snapshot(first.digest[:10]) is first
        with pytest.raises(KeyError):
            rs[0].rollback("feedface00")
    finally:
        for r in rs:
            r.stop()


HOSTILE_CONTROL = [
    b"[1, 2]",
    b'"text"',
    b"null",
    b"\xff\xfe",
    b'{"seq": true, "action": "reload"}',
    b'{"seq": -5, "action": "reload"}',
    b'{"seq": 1e308, "action": "reload"}',
    b'{"seq": 7, "action": ["reload"]}',
    b'{"seq": 8, "action": "rollback", "target": {"a": 1}}',
    b'{"seq": 9, "action": "rollback", "values": {"": 1}, "held": []}',
    b'{"seq": 99999999999999999999999999999, "action": "reload"}',
    b'{"seq": 3, "action": "reload", "actor": "written by hand, lower"}',
]


def test_a_control_record_deleted_or_written_by_hand_never_silences_a_worker(tmp_path: pathlib.Path) -> None:
    """The control record deleted (or its directory made anew) starts again at 1, under the
    workers' reports of higher numbers; a record written by hand may hold anything. Every
    command after either still runs in every worker, and its answer is the answer to it.
    Before: a deleted record's next command was ignored by every worker and ACKed by their
    reports of the older command, so `workers.reload()` said "complete" with nothing run."""
    rs = workers(tmp_path, n=2)
    for r in rs:
        r.start()
    state = tmp_path / "state"
    try:
        assert rs[0].workers.reload(actor="ops").complete  # type: ignore[union-attr]
        for i, text in enumerate(["two", "three"]):
            (state / "control.json").unlink()  # deleted while they run: the sequence starts again
            write_atomic(tmp_path / "config.yaml", f"message: {text}\n")
            answer = rs[0].workers.reload(actor="ops")  # type: ignore[union-attr]
            assert answer.complete and answer.seq > 1, answer.summary()
            assert [r.current.message for r in rs] == [text, text], i
        for body in HOSTILE_CONTROL:
            tmp = state / "control.tmp"
            tmp.write_bytes(body)
            tmp.replace(state / "control.json")
            time.sleep(0.05)
        write_atomic(tmp_path / "config.yaml", "message: four\n")
        answer = rs[0].workers.reload(actor="ops")  # type: ignore[union-attr]
        assert answer.complete, answer.summary()
        assert [r.current.message for r in rs] == ["four", "four"]
        assert all(r.status()["healthy"] for r in rs)
        (state / "overrides.json").unlink(missing_ok=True)
        answer = rs[1].workers.set({"message": "over"}, actor="ops")  # type: ignore[union-attr]
        assert answer.complete and [r.current.message for r in rs] == ["over", "over"], answer.summary()
        (state / "overrides.json").unlink()
        answer = rs[1].workers.set({"message": "again"}, actor="ops")  # type: ignore[union-attr]
        assert answer.complete and [r.current.message for r in rs] == ["again", "again"], answer.summary()
    finally:
        for r in rs:
            r.stop()


def test_a_worker_started_after_a_rollback_comes_up_on_the_rolled_back_config(tmp_path: pathlib.Path) -> None:
    """A service-wide rollback holds in workers started after it (the file still holds
    what it held then): the new worker replays it, with origin rollback:<actor>@<ts>,
    and answers it; once the file changes, a worker started later takes the file."""
    rs = workers(tmp_path, n=4)
    for r in rs[:2]:
        r.start()
    try:
        write_atomic(tmp_path / "config.yaml", "message: two\nlogging:\n  level: debug\n")
        wait_for(lambda: [r.current.message for r in rs[:2]] == ["two"] * 2)
        answer = rs[0].workers.rollback(1, actor="ops")  # type: ignore[union-attr]
        assert answer.complete and [r.current.message for r in rs[:2]] == ["one"] * 2, answer.summary()
        rs[2].start()
        assert (rs[2].current.message, rs[2].current.logging.level) == ("one", "info")
        assert rs[2].snapshot is not None and rs[2].snapshot.digest == rs[0].snapshot.digest  # type: ignore[union-attr]
        assert rs[2].snapshot.origins["message"].startswith("rollback:ops@")
        row = {r.instance: r for r in StateDir(tmp_path / "state").workers().rows}["w2"]
        assert row.get("command_outcome") == "applied" and row.get("digest") == rs[2].snapshot.digest
        assert rs[2].reload().outcome is sr.Outcome.UNCHANGED and rs[2].current.message == "one"  # it holds
        write_atomic(tmp_path / "config.yaml", "message: three\n")
        wait_for(lambda: [r.current.message for r in rs[:3]] == ["three"] * 3)
        rs[3].start()
        assert rs[3].current.message == "three"
    finally:
        for r in rs:
            r.stop()


def test_a_stopped_worker_ignores_the_expiry_of_its_override(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopping a worker cancels its override-expiry timer: when the override expires
    (the running worker drops it), the stopped one logs nothing, reloads nothing and
    leaves no report behind."""
    rs = workers(tmp_path, n=2)
    for r in rs:
        r.start()
    answer = rs[0].workers.set({"message": "over"}, actor="alice", ttl=1.0)  # type: ignore[union-attr]
    assert answer.complete, answer.summary()
    version = rs[0].snapshot.version  # type: ignore[union-attr]
    rs[0].stop()
    timers = [t for t in threading.enumerate() if t.name == "selreload-override-expiry"]
    assert len(timers) == 1  # only the running worker's
    caplog.set_level(logging.DEBUG)
    try:
        assert wait_for(lambda: rs[1].current.message == "one", timeout=10), "the override did not expire"
        assert rs[0].snapshot.version == version and rs[0].current.message == "over"  # type: ignore[union-attr]
        stopped = [r for r in caplog.records if r.levelno >= logging.WARNING or "StateError" in r.getMessage()]
        assert stopped == [], [r.getMessage() for r in stopped]
        assert [r.instance for r in StateDir(tmp_path / "state").workers().rows] == ["w1"]
    finally:
        rs[1].stop()


def test_every_record_names_its_instance_and_denials_too(tmp_path: pathlib.Path) -> None:
    """Audit records (attempts and denials), results and status carry the instance."""
    audit = sr.AuditLog(tmp_path / "audit.jsonl")
    (r,) = workers(tmp_path, 1, audit=audit)
    r.start()
    result = r.reload()
    r.stop()
    audit.record_denied(config="c", actor="x", action="POST /reload", reason="no token")
    records = sr.read_audit(tmp_path / "audit.jsonl")
    assert [rec["instance"] for rec in records] == ["w0", f"{socket.gethostname()}:{os.getpid()}"]
    assert result.instance == "w0" and r.status()["instance"] == "w0"
    assert sr.Reloader(App).instance == f"{socket.gethostname()}:{os.getpid()}"


DEAD_WORKER = """
import sys, time
import selreload as sr
from tests.test_workers import App
r = sr.Reloader(App, [sr.YamlFile(sys.argv[1])], state_dir=sys.argv[2])
r.start()
print("up", flush=True)
time.sleep(60)
"""


def test_status_lists_three_workers_then_two_after_one_is_killed(tmp_path: pathlib.Path) -> None:
    """Each worker holds a flock on its own lock file; kill -9 releases it, so the status
    command sees it dead at once (and lists it apart)."""
    write_atomic(tmp_path / "config.yaml", "message: one\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", DEAD_WORKER, str(tmp_path / "config.yaml"), str(tmp_path / "state")]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE) for _ in range(3)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == b"up\n"
        out = subprocess.run(
            [sys.executable, "-m", "selreload", "status", "--state-dir", str(tmp_path / "state")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.splitlines()[-1].startswith("3 workers live, all on digest"), out
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        status = StateDir(tmp_path / "state").workers()
        assert len(status.rows) == 2 and len(status.dead) == 1
        assert status.dead[0].pid == procs[0].pid
        assert "2 workers live" in status.summary() and "1 dead" in status.summary()
    finally:
        for p in procs:
            p.kill()
            p.wait()
            if p.stdout is not None:
                p.stdout.close()


# --- real servers ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    def __init__(self, tmp_path: pathlib.Path, kind: str) -> None:
        self.tmp = tmp_path
        self.kind = kind
        self.cfg = tmp_path / "config.yaml"
        self.state = StateDir(tmp_path / "state")
        self.audit = tmp_path / "audit.jsonl"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> subprocess.Popen[bytes]:
        write_atomic(self.cfg, "message: one\n")
        metrics = self.tmp / "metrics"
        metrics.mkdir()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SELRELOAD_EXAMPLE_CONFIG": str(self.cfg),
            "SELRELOAD_STATE_DIR": str(self.state.path),
            "SELRELOAD_ADMIN_TOKEN": TOKEN,
            "SELRELOAD_AUDIT_LOG": str(self.audit),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        }
        bind = ["--host", "127.0.0.1", "--port", str(self.port)]
        if self.kind == "uvicorn":
            cmd = [sys.executable, "-m", "uvicorn", "examples.workers:app", "--workers", "3", *bind]
        else:  # gunicorn with --preload: the Reloader starts in the master, before the fork
            exe = str(pathlib.Path(sys.executable).with_name("gunicorn"))
            cmd = [exe, "--preload", "-k", "uvicorn.workers.UvicornWorker", "-w", "3"]
            cmd += ["-b", f"127.0.0.1:{self.port}", "examples.workers:app"]
        self.log = open(self.tmp / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=self.tmp, env=env, stdout=self.log, stderr=self.log)
        return self.proc

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def values(self, n: int = 60) -> list[str]:
        """`message` as n requests see it, each on a new connection (any worker may answer)."""
        seen = []
        with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=5) as client:
            for _ in range(n):
                seen.append(client.get(f"{self.url}/value", headers={"Connection": "close"}).json()["message"])
        return seen

    def post(self, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.post(f"{self.url}/admin{path}", json=body, headers=headers, timeout=10)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "selreload", *args, "--state-dir", str(self.state.path)]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)


@pytest.fixture(params=["uvicorn", "gunicorn"])
def service(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Service]:
    svc = Service(tmp_path, request.param)
    svc.start()
    try:
        up = wait_for(lambda: len(svc.state.workers().rows) == 3, timeout=30, step=0.05)
        assert up, (tmp_path / "server.log").read_text()
        assert wait_for(lambda: _answers(svc), timeout=10, step=0.05)
        yield svc
    finally:
        svc.stop()


def _answers(svc: Service) -> bool:
    try:
        return httpx.get(f"{svc.url}/value", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _version_samples(text: str) -> dict[str, float]:
    pattern = r'^selreload_config_version\{config="workers-example",pid="(\d+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.M)}


def test_three_real_workers_one_config(service: Service) -> None:
    """uvicorn --workers 3 / gunicorn --preload -w 3: a save, an override for 2s and its
    expiry, a refused restart-only override and a rollback reach every worker (60 requests
    each); the status command lists 3 then 2; the audit verifies and names instances;
    multiprocess metrics give every scrape the same view."""
    svc = service
    pids = {r.pid for r in svc.state.workers().rows}

    write_atomic(svc.cfg, "message: two\n")
    assert wait_for(
        lambda: (
            {r.get("digest") for r in svc.state.workers().rows} != {None}
            and all(r.get("applied") == ["message"] for r in svc.state.workers().rows)
        )
    )
    assert svc.values() == ["two"] * 60

    done = svc.cli("set", "message=over", "--for", "2s", "--actor", "alice")
    assert done.returncode == 0, done.stderr
    assert "3 of 3 workers applied it" in done.stdout
    t_set = time.monotonic()
    assert svc.values() == ["over"] * 60
    config = httpx.get(f"{svc.url}/admin/config", timeout=5).json()
    assert config["overrides"][0]["actor"] == "alice" and config["config"]["message"] == "over"
    time.sleep(max(0.0, 2.3 - (time.monotonic() - t_set)))
    assert wait_for(lambda: svc.values(20) == ["two"] * 20, timeout=3)
    assert svc.values() == ["two"] * 60

    refused = svc.post("/overrides", {"set": {"port": 9}})
    assert refused.status_code == 409 and "restart-only" in refused.text
    assert svc.state.read_overrides()["seq"] == 1  # nothing written

    answer = svc.post("/rollback/1")
    assert answer.status_code == 200, answer.text
    assert answer.json()["workers"] == {"total": 3, "applied": 3, "refused": 0, "pending": 0}
    assert svc.values() == ["one"] * 60

    scrapes = [httpx.get(f"{svc.url}/admin/metrics", timeout=5).text for _ in range(6)]
    views = [sorted(line for line in s.splitlines() if line.startswith("selreload_")) for s in scrapes]
    assert all(v == views[0] for v in views), "every worker's /metrics reads the same files"
    assert {str(p) for p in pids} <= set(_version_samples(scrapes[0])), scrapes[0]
    total = re.search(
        r'^selreload_reloads_total\{config="workers-example",outcome="applied"\} (\S+)$', scrapes[0], re.M
    )
    assert total is not None and float(total[1]) >= 3 * 4  # start, save, override, expiry per worker

    found = sr.verify_audit(svc.audit)
    assert found.ok, found
    instances = {rec["instance"] for rec in sr.read_audit(svc.audit)}
    assert {f"{socket.gethostname()}:{pid}" for pid in pids} <= instances

    victim = next(iter(pids))
    os.kill(victim, signal.SIGKILL)

    def gone() -> Any:
        status = svc.state.workers()
        return status if victim not in {r.pid for r in status.rows} else None

    # Seen dead as soon as the kernel frees its lock; the server may start a replacement
    # after, which then reports under its own pid.
    seen = wait_for(gone, step=0.002)
    assert seen and len(seen.rows) == 2 and victim in {r.pid for r in seen.dead}, seen
    out = svc.cli("status").stdout
    assert f":{victim} " not in out, out

"""Faults caused for real: appliers that raise anything or hang, sys.exit() on the watcher
thread, kill -9 during reloads, a full disk under each audit policy, fork and gunicorn."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._audit import verify_audit
from tests.conftest import write_atomic


@sr.config
class App:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning"]))
    workers: int = sr.hot(default=1)
    port: int = sr.restart_only(default=8080)
    note: str = sr.hot(default="")


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Step:
    """An applier that records apply/rollback in a shared journal and can raise."""

    def __init__(self, name: str, journal: list[tuple[str, str]]) -> None:
        self.name = name
        self.journal = journal
        self.raise_: BaseException | None = None

    def apply(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.raise_ is not None:
            raise self.raise_
        self.journal.append(("apply", self.name))

    def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        self.journal.append(("rollback", self.name))


def make(tmp_path: pathlib.Path, **kw: Any) -> sr.Reloader[App]:
    path = tmp_path / "config.yaml"
    write_atomic(path, "level: info\n")
    kw.setdefault("registry", CollectorRegistry())
    kw.setdefault("sources", [sr.YamlFile(path, watch=False)])
    return sr.Reloader(App, **kw)


@pytest.mark.parametrize("timeout", [5.0, None], ids=["worker-thread", "inline"])
@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit, GeneratorExit])
@pytest.mark.parametrize("position", [0, 1, 2])
def test_any_base_exception_at_any_position_is_undone_recorded_then_raised(
    tmp_path: pathlib.Path, kind: type[BaseException], position: int, timeout: float | None
) -> None:
    """An applier raising a BaseException at position k of 3: the appliers before it are
    rolled back newest first, the live config stays, an audit record and the status say
    ROLLED_BACK; KeyboardInterrupt and SystemExit then propagate to the caller, and the
    same bytes are tried again (not UNCHANGED) once the fault is gone."""
    journal: list[tuple[str, str]] = []
    audit = sr.AuditLog(tmp_path / "audit.jsonl", fsync=False)
    r = make(tmp_path, audit=audit, applier_timeout=timeout)
    steps = [Step(f"s{i}", journal) for i in range(3)]
    for s in steps:
        r.on("level", s)
    r.start()
    journal.clear()
    steps[position].raise_ = kind()
    write_atomic(tmp_path / "config.yaml", "level: debug\n")
    if kind is GeneratorExit:
        result = r.reload()
        assert result.outcome is sr.Outcome.ROLLED_BACK
    else:
        with pytest.raises(kind):
            r.reload()
    assert journal == [("apply", f"s{i}") for i in range(position)] + [
        ("rollback", f"s{i}") for i in reversed(range(position))
    ]
    assert r.current.level == "info"
    assert r.status()["last_outcome"] == "rolled_back"
    records = sr.read_audit(tmp_path / "audit.jsonl")
    assert records[-1]["outcome"] == "rolled_back" and kind.__name__ in records[-1]["errors"][0]
    steps[position].raise_ = None
    assert r.reload().outcome is sr.Outcome.APPLIED and r.current.level == "debug"
    r.stop()


def test_a_function_applier_cannot_change_what_its_rollback_gets(tmp_path: pathlib.Path) -> None:
    """Appliers get immutable batches: the list a function applier mutated is not the one
    its rollback sees."""
    r = make(tmp_path)
    seen: list[Any] = []

    def fn(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        seen.append(changes)
        with pytest.raises(AttributeError):
            changes.clear()  # type: ignore[attr-defined]

    r.on("level", fn)
    fail = Step("after", [])
    r.on("level", fail)
    r.start()
    fail.raise_ = RuntimeError("no")
    write_atomic(tmp_path / "config.yaml", "level: debug\n")
    assert r.reload().outcome is sr.Outcome.ROLLED_BACK
    assert all(isinstance(c, tuple) for c in seen) and seen[-1][0].new == "info"


def test_sys_exit_on_the_watcher_thread_does_not_stop_watching(tmp_path: pathlib.Path) -> None:
    """sys.exit() in an applier on the watcher thread: rolled back and recorded, the watcher
    survives, and the next save still reloads."""
    path = tmp_path / "config.yaml"
    write_atomic(path, "level: info\n")
    r = sr.Reloader(App, sources=[sr.YamlFile(path)], registry=CollectorRegistry())
    calls: list[str] = []

    @r.on("level")
    def exiting(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        calls.append(changes[0].new)
        if changes[0].new == "debug":
            sys.exit(3)

    with r:
        write_atomic(path, "level: debug\n")
        assert wait_for(lambda: r.status()["last_outcome"] == "rolled_back")
        assert r.current.level == "info"
        write_atomic(path, "level: warning\n")
        assert wait_for(lambda: r.current.level == "warning")
        assert r.status()["healthy"] is True


def test_a_hanging_applier_never_holds_the_others(tmp_path: pathlib.Path) -> None:
    """An applier that hangs past its deadline: that reload ends DEGRADED after the
    deadline; meanwhile other threads' plan() and status() return at once, and after it
    their reload() runs (the lock is released)."""
    release = threading.Event()
    r = make(tmp_path, applier_timeout=3.0)
    hang = {"on": False}

    @r.on("level")
    def slow(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if hang["on"]:
            release.wait(30)

    r.start()
    hang["on"] = True
    write_atomic(tmp_path / "config.yaml", "level: debug\n")
    results: list[sr.ReloadResult] = []
    t = threading.Thread(target=lambda: results.append(r.reload()))
    t0 = time.monotonic()
    t.start()
    time.sleep(0.1)
    # Readers and planners do not wait for the writer.
    for call in (r.plan, r.status, lambda: r.current):
        c0 = time.monotonic()
        call()
        assert time.monotonic() - c0 < 1.5  # the writer holds on for 3 s
    t.join(10)
    assert results[0].outcome is sr.Outcome.DEGRADED and time.monotonic() - t0 < 10
    assert "did not return within 3 s" in str(results[0].errors[0])
    assert r.current.level == "info" and r.status()["healthy"] is False
    hang["on"] = False
    c0 = time.monotonic()
    assert r.reload().outcome is sr.Outcome.APPLIED
    assert time.monotonic() - c0 < 3 and r.status()["healthy"] is True
    release.set()


@pytest.mark.parametrize("policy", ["refuse", "degrade"])
def test_a_full_disk_under_each_audit_policy(tmp_path: pathlib.Path, policy: str) -> None:
    """ENOSPC on a real 64 KiB tmpfs: with "refuse" the change is undone and never goes live;
    with "degrade" it commits. Both: unhealthy with the reason and a metric; once space
    is back the next record is written, the status is healthy, and the chain verifies."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        if os.environ.get("CI"):
            pytest.fail("cannot mount a tmpfs (needs root)")
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        registry = CollectorRegistry()
        journal: list[tuple[str, str]] = []
        r = make(tmp_path, audit=sr.AuditLog(mnt / "audit.jsonl"), registry=registry, on_audit_failure=policy)
        r.on("level", Step("a", journal))
        r.start()
        filler = mnt / "filler"
        with open(filler, "wb") as fh, pytest.raises(OSError):
            fh.write(b"x" * 200_000)
        # The record of this reload needs pages the disk no longer has.
        write_atomic(tmp_path / "config.yaml", f"level: debug\nnote: {'n' * 12_000}\n")
        result = r.reload()
        failures = registry.get_sample_value("selreload_audit_failures_total", {"config": "default"})
        assert failures is not None and failures >= 1
        status = r.status()
        assert status["healthy"] is False and "audit record could not be written" in status["unhealthy_reasons"][0]
        assert registry.get_sample_value("selreload_healthy", {"config": "default"}) == 0.0
        if policy == "refuse":
            assert result.outcome is sr.Outcome.ROLLED_BACK and r.current.level == "info"
            assert journal[-1] == ("rollback", "a")
        else:
            assert result.outcome is sr.Outcome.APPLIED and r.current.level == "debug"
        filler.unlink()
        write_atomic(tmp_path / "config.yaml", "level: warning\n")
        assert r.reload().outcome is sr.Outcome.APPLIED
        assert r.status()["healthy"] is True
        assert verify_audit(mnt / "audit.jsonl").ok
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_kill_9_during_a_reload_loop_leaves_a_verifiable_audit(tmp_path: pathlib.Path) -> None:
    """30 times: a forked process reloads in a loop and is killed with SIGKILL at a random
    moment. The audit file then verifies: no tampering, at most torn last lines."""
    audit_path = tmp_path / "audit.jsonl"
    rng = random.Random(7)
    for i in range(30):
        pid = os.fork()
        if pid == 0:  # the child: reload until killed
            try:
                r = make(
                    tmp_path / f"c{i}" if (tmp_path / f"c{i}").mkdir() is None else tmp_path,
                    audit=sr.AuditLog(audit_path),
                )
                r.start()
                n = 0
                while True:
                    n += 1
                    write_atomic(tmp_path / f"c{i}" / "config.yaml", f"level: {'debug' if n % 2 else 'info'}\n")
                    r.reload()
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.02, 0.15))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    found = verify_audit(audit_path)
    assert found.ok, found
    assert found.records > 30


GUNICORN_APP = """
import os, pathlib
import selreload as sr

@sr.config
class App:
    message: str = sr.hot(default="one")

reloader = sr.Reloader(App, sources=[sr.YamlFile(os.environ["CFG"])])
reloader.start()  # at import: with --preload, before gunicorn forks the workers

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getpid()} {reloader.current.message} {reloader.status()['healthy']}".encode()]
"""


@pytest.fixture
def gunicorn(tmp_path: pathlib.Path) -> Iterator[tuple[str, pathlib.Path]]:
    import socket

    (tmp_path / "gapp.py").write_text(GUNICORN_APP)
    cfg = tmp_path / "config.yaml"
    write_atomic(cfg, "message: one\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = pathlib.Path(sys.executable).with_name("gunicorn")
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [str(exe), "--preload", "-w", "2", "-b", f"127.0.0.1:{port}", "gapp:app"],
        cwd=tmp_path,
        env={**os.environ, "CFG": str(cfg), "PYTHONPATH": os.pathsep.join(sys.path)},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        yield f"http://127.0.0.1:{port}/", cfg
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_gunicorn_preload_two_workers_both_see_a_save(gunicorn: tuple[str, pathlib.Path]) -> None:
    """A Reloader started before gunicorn forks (--preload): each worker restarts its file
    watch after the fork, so a save reaches both workers."""
    import httpx

    url, cfg = gunicorn

    def sample() -> dict[str, str]:
        seen: dict[str, str] = {}
        for _ in range(40):
            try:
                pid, message, healthy = httpx.get(url, timeout=2).text.split()
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            assert healthy == "True"
            seen[pid] = message
        return seen

    assert wait_for(lambda: len(sample()) == 2, timeout=20)
    write_atomic(cfg, "message: two\n")
    assert wait_for(lambda: (s := sample()) != {} and len(s) == 2 and set(s.values()) == {"two"}, timeout=15)

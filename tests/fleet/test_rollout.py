"""Progressive rollout with five real instances: promoted after the bake; a NACK or an
unhealthy canary reverts the canaries, and the fleet never goes past them."""

from __future__ import annotations

import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from selreload._cli import main
from selreload._etcd_access import access
from selreload._fleet import plan_push
from selreload._rollout import Rollout

from .conftest import Kv
from .etcd_server import EtcdServer
from .instances import Fleet, wait_for
from .worker import App

pytestmark = pytest.mark.etcd


def document(limit: int, *, sick: bool = False) -> str:
    return f"limit: {limit}\nflags:\n  sick: {'true' if sick else 'false'}\n"


@pytest.fixture
def fleet(etcd: EtcdServer, tmp_path: pathlib.Path) -> Iterator[Fleet]:
    key = f"/rollout/{uuid.uuid4().hex[:12]}/config"
    Kv(etcd.endpoint).put(key, document(1))
    fleet = Fleet(etcd.endpoint, key, [f"i{n}" for n in range(5)], lease_ttl=2, log_dir=tmp_path)
    try:
        fleet.wait_ready()
        fleet.wait_all(lambda r: r.acked, what="five ACKs")
        yield fleet
    finally:
        fleet.close()


def roll(fleet: Fleet, tmp_path: pathlib.Path, text: str, *, stages: tuple[str, ...] = ("1", "40%", "100%")) -> object:
    path = tmp_path / "doc.yaml"
    path.write_text(text)
    where = access(fleet.endpoint, environ={})
    planned = plan_push(where, fleet.key, App, path)
    assert planned.errors is None, planned.plan
    return Rollout(where, fleet.key).start(planned, stages=stages, bake=1.0, stage_timeout=10.0, actor="test")


def limits(fleet: Fleet) -> dict[str, int]:
    return {name: inst.current()["limit"] for name, inst in fleet.instances.items()}


def test_a_good_document_is_promoted_after_the_bake(fleet: Fleet, tmp_path: pathlib.Path) -> None:
    """Stages 1, 40%, 100%: the candidate reaches all five and lands at the key."""
    result = roll(fleet, tmp_path, document(7))
    assert result.exit_code == 0, result.message  # type: ignore[attr-defined]
    fleet.wait_all(lambda r: r.acked and not r.candidate and r.applied_revision == fleet.status().latest_revision,
                   what="all on the promoted revision")  # fmt: skip
    assert set(limits(fleet).values()) == {7}
    assert Kv(fleet.endpoint).get(fleet.key + ".rollout") is None


def test_a_document_the_canary_nacks_is_reverted(fleet: Fleet, tmp_path: pathlib.Path) -> None:
    """The one canary NACKs (capacity exceeded): reverted, exit 4 naming it; nobody else ever ran it."""
    result = roll(fleet, tmp_path, document(20_000))
    assert result.exit_code == 4 and "i0: NACK" in result.message, result.message  # type: ignore[attr-defined]
    assert set(limits(fleet).values()) == {1}
    assert Kv(fleet.endpoint).get(fleet.key + ".rollout") is None


def test_an_unhealthy_canary_is_reverted(fleet: Fleet, tmp_path: pathlib.Path) -> None:
    """The canary applies the document, then reports unhealthy: reverted back to limit 1."""
    result = roll(fleet, tmp_path, document(5, sick=True))
    assert result.exit_code == 4 and "unhealthy: flags.sick is set" in result.message, result.message  # type: ignore[attr-defined]
    fleet.wait_all(lambda r: r.acked and not r.candidate, what="the canary back on the key")
    assert set(limits(fleet).values()) == {1}


# --- a push that dies mid-rollout, and a second operator --------------------------------

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def start_push(fleet: Fleet, path: pathlib.Path, *, bake: str) -> subprocess.Popen[str]:
    """`selreload push --canary 1,40%` as its own process, as an operator runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "selreload", "push", str(path), "--etcd", fleet.endpoint, "--key", fleet.key,
         "--schema", "tests.fleet.worker:App", "--canary", "1,40%", "--bake", bake, "--stage-timeout", "20s",
         "--actor", "alice"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def kill_when_baking(push: subprocess.Popen[str]) -> list[str]:
    """Read the push's lines until stage 1 bakes (its canary adopted the candidate), then SIGKILL it."""
    assert push.stdout is not None
    seen: list[str] = []
    for line in push.stdout:  # bounded: the push ends (and stdout closes) by itself otherwise
        seen.append(line.rstrip("\n"))
        if line.startswith("stage 1: 1 canaries ACKed; baking"):
            push.send_signal(signal.SIGKILL)
            break
    push.wait(10)
    push.stdout.close()
    assert push.stderr is not None
    push.stderr.close()
    assert push.returncode == -signal.SIGKILL, seen
    return seen


def crashed_rollout(fleet: Fleet, tmp_path: pathlib.Path, limit: int, *, bake: str) -> str:
    """Start a push of `limit`, kill -9 it during stage 1's bake; returns the canary's name.
    (The kill comes as the bake starts: a bake of seconds is far longer than that.)"""
    path = tmp_path / "new.yaml"
    path.write_text(document(limit))
    kill_when_baking(start_push(fleet, path, bake=bake))
    record = Kv(fleet.endpoint).get(fleet.key + ".rollout")
    assert record is not None, "the record outlives the push"
    (canary,) = json.loads(record[0])["canaries"]
    rows = fleet.wait_all(lambda r: r.acked, what="every instance ACKed")
    assert [n for n, r in rows.items() if r.candidate] == [canary]
    return str(canary)


def test_a_killed_push_shows_its_stage_and_resume_completes_it(fleet: Fleet, tmp_path: pathlib.Path) -> None:
    """kill -9 of push during the bake: `rollout status` names stage 1 of 3, the canary on
    the candidate and every instance's revision; `rollout resume` (once the dead driver's
    lock lapses) drives it on and the whole fleet ends on the new document."""
    base = Kv(fleet.endpoint).get(fleet.key)
    assert base is not None
    canary = crashed_rollout(fleet, tmp_path, 7, bake="5s")
    etcd = ("--etcd", fleet.endpoint, "--key", fleet.key)
    code, out, _ = cli("rollout", "status", *etcd)
    assert code == 0 and "stage 1 of 3 (1,40%,100%)" in out and f"canary: {canary}" in out and "by alice" in out, out
    for name in fleet.instances:
        (row,) = [line for line in out.splitlines() if line.startswith(name + " ") or line.startswith(name + "*")]
        assert str(base[1]) in row or name == canary, row
    code, out, _ = cli("rollout", "status", *etcd, "--json")
    doc = json.loads(out)
    assert doc["rollout"]["stage"] == 0 and doc["rollout"]["canaries"] == [canary]
    assert {i["instance"]: i["candidate"] for i in doc["instances"]} == {n: n == canary for n in fleet.instances}

    # The dead driver's lock lives out its lease (5s): resume is refused, by name, until then.
    def resumed() -> tuple[int, str, str] | None:
        got = cli("rollout", "resume", *etcd, "--actor", "bob")
        if got[0] == 1 and "its driver is alive" in got[2]:
            return None
        return got

    code, out, err = wait_for(resumed, timeout=30, what="the dead push's lock to lapse", interval=0.5)
    assert code == 0 and "promoted" in out, (out, err)
    assert "resuming rollout" in out and "(by bob)" in out
    revision = fleet.status().latest_revision
    fleet.wait_all(lambda r: r.acked and not r.candidate and r.applied_revision == revision, what="all promoted")
    assert set(limits(fleet).values()) == {7}
    assert Kv(fleet.endpoint).get(fleet.key + ".rollout") is None
    assert Kv(fleet.endpoint).get(fleet.key + ".candidate") is None


def test_abort_after_a_killed_push_brings_the_canary_back(fleet: Fleet, tmp_path: pathlib.Path) -> None:
    """kill -9 of push during the bake, then `rollout abort`: the canary returns to the old
    document, every instance ACKs it, the key never moved and the record is gone."""
    base = Kv(fleet.endpoint).get(fleet.key)
    assert base is not None
    canary = crashed_rollout(fleet, tmp_path, 8, bake="60s")
    code, out, err = cli("rollout", "abort", "--etcd", fleet.endpoint, "--key", fleet.key)
    assert code == 0 and f"{canary} back on {fleet.key}" in out, (out, err)
    fleet.wait_all(lambda r: r.acked and not r.candidate and r.applied_revision == base[1], what="all on the old doc")
    assert set(limits(fleet).values()) == {1}
    assert Kv(fleet.endpoint).get(fleet.key) == base
    assert Kv(fleet.endpoint).get(fleet.key + ".rollout") is None
    code, out, _ = cli("rollout", "status", "--etcd", fleet.endpoint, "--key", fleet.key)
    assert code == 0 and out.startswith(f"no rollout in progress on {fleet.key}"), out


def test_a_second_push_during_a_rollout_is_refused_naming_it(fleet: Fleet, tmp_path: pathlib.Path) -> None:
    """While a rollout is in progress (its driver alive, or dead), another operator's push,
    progressive or plain, is refused in one line naming that rollout; nothing is written."""
    first = tmp_path / "first.yaml"
    first.write_text(document(9))
    push = start_push(fleet, first, bake="60s")
    try:
        assert push.stdout is not None
        # Bounded: the push's output ends when it does (a StopIteration here then fails the test).
        rollout_id = next(line.split()[2] for line in push.stdout if line.startswith("started rollout"))
        kv = Kv(fleet.endpoint)
        before = (kv.get(fleet.key), kv.get(fleet.key + ".candidate"))
        second = tmp_path / "second.yaml"
        second.write_text(document(3))
        common = (
            "push",
            str(second),
            "--etcd",
            fleet.endpoint,
            "--key",
            fleet.key,
            "--schema",
            "tests.fleet.worker:App",
        )
        for extra in (("--canary", "1"), ()):
            code, out, err = cli(*common, *extra)
            lines = err.strip().splitlines()
            assert code == 1 and f"rollout {rollout_id}" in lines[-1], (out, err)
            assert "in progress" in lines[-1] and (extra or len(lines) == 1), err  # a plain push: one line
        assert (kv.get(fleet.key), kv.get(fleet.key + ".candidate")) == before  # the first driver's, untouched
    finally:
        push.kill()
        push.wait(10)
        for stream in (push.stdout, push.stderr):
            if stream is not None:
                stream.close()
    code, out, err = cli("rollout", "abort", "--etcd", fleet.endpoint, "--key", fleet.key)
    assert code == 0, err

"""Records in etcd that anyone who can write the keys may spoil: a status row, the overrides
record, the rollout record. JSON nested past the decoder's depth raised `RecursionError`
out of `json.loads` in each reader; now each is read as "not a record": an instance keeps
applying its document, and `fleet status` and `rollout status` answer."""

from __future__ import annotations

import io
import json
import pathlib

import pytest

import selreload as sr
from selreload._cli import main

from .conftest import BASE, Kv
from .etcd_server import EtcdServer
from .instances import wait_for
from .worker import App

pytestmark = pytest.mark.etcd

DEEP = "[" * 100_000 + "]" * 100_000


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def acked(kv: Kv, key: str, revision: int) -> bool:
    raw = kv.get(f"{key}.status/solo")
    return raw is not None and json.loads(raw[0]).get("applied_revision") == revision


@pytest.mark.parametrize("record", ["overrides", "rollout", "candidate"])
def test_an_instance_keeps_applying_beside_a_spoiled_record(
    started: sr.Reloader[App], kv: Kv, key: str, record: str
) -> None:
    """A deep overrides or rollout record is no record: the next put is applied and ACKed."""
    if record == "rollout":  # with a candidate beside it, an instance reads the record
        kv.put(f"{key}.candidate", BASE.replace("info", "error"))
    kv.put(f"{key}.{record}", DEEP)
    revision = kv.put(key, BASE.replace("info", "debug"))
    wait_for(lambda: acked(kv, key, revision), timeout=10, what="the ACK of the put after the spoiled record")
    assert started.current.level == "debug"
    assert started.status()["healthy"], started.status()


def test_fleet_and_rollout_status_read_past_spoiled_records(
    started: sr.Reloader[App], etcd: EtcdServer, kv: Kv, key: str
) -> None:
    """A spoiled status row shows as unreadable beside the real one; a spoiled rollout
    record is named as such, in one line, without a traceback."""
    revision = kv.put(key, BASE.replace("info", "warning"))
    wait_for(lambda: acked(kv, key, revision), timeout=10, what="the ACK")
    kv.put(f"{key}.status/intruder", DEEP)
    code, out, err = cli("fleet", "status", "--etcd", etcd.endpoint, "--key", key, "--json")
    rows = {row["instance"]: row for row in json.loads(out)["instances"]}
    assert rows["solo"]["outcome"] == "applied" and rows["intruder"]["outcome"] == "unreadable", (out, err)
    code, out, err = cli("fleet", "status", "--etcd", etcd.endpoint, "--key", key)
    assert code == 0 and "intruder" in out and "solo" in out, (code, out, err)


@pytest.mark.parametrize("spoiled", [DEEP, "not json", '{"id": "x"}', "[]"])
def test_a_spoiled_rollout_record_is_named_and_abort_removes_it(
    started: sr.Reloader[App], etcd: EtcdServer, kv: Kv, key: str, tmp_path: pathlib.Path, spoiled: str
) -> None:
    """Whatever the rollout key holds that is not a rollout record: `rollout status` and
    `resume` name it in one line, `push` refuses to start beside it, and `rollout abort`
    removes it, after which a push goes through (an operator is never left to etcdctl)."""
    at = ("--etcd", etcd.endpoint, "--key", key)
    kv.put(f"{key}.rollout", spoiled)
    code, out, err = cli("rollout", "status", *at)
    assert code == 0 and out.startswith(f"{key}.rollout: not a rollout record: "), (code, out, err)
    assert "`selreload rollout abort` removes it" in out.splitlines()[0]
    code, out, err = cli("rollout", "status", *at, "--json")
    assert json.loads(out)["problem"].startswith(f"{key}.rollout: not a rollout record")
    code, out, err = cli("rollout", "resume", *at)
    assert code == 1 and "not a rollout record" in err and "nothing to resume" in err, (code, out, err)
    new = tmp_path / "next.yaml"
    new.write_text(BASE.replace("info", "error"))
    code, out, err = cli("push", str(new), *at, "--schema", "tests.fleet.worker:App")
    assert code == 1 and "is in progress" in err, (code, out, err)
    code, out, err = cli("rollout", "abort", *at)
    assert code == 0 and out.startswith(f"removed {key}.rollout: not a rollout record"), (code, out, err)
    assert kv.get(f"{key}.rollout") is None
    code, out, err = cli("push", str(new), *at, "--schema", "tests.fleet.worker:App")
    assert code == 0, (code, out, err)
    revision = kv.get(key)
    assert revision is not None
    wait_for(lambda: acked(kv, key, revision[1]), timeout=10, what="the ACK of the push")
    assert started.current.level == "error"

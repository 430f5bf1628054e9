"""Fleet-wide runtime overrides and rollback through etcd, with three real instance processes:
`selreload set|unset|status|rollback --etcd` against what every instance runs and audits."""

from __future__ import annotations

import io
import json
import pathlib
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from selreload._cli import main
from selreload._statedir import parse_ts

from .conftest import Kv
from .etcd_server import EtcdServer
from .instances import Fleet

pytestmark = pytest.mark.etcd

SCHEMA = "tests.fleet.worker:App"


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def fleet(etcd: EtcdServer, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fleet]:
    """Three instances (`i0`..`i2`, each with its audit log) on a fresh key."""
    key = f"/overrides/{uuid.uuid4().hex[:12]}/config"
    Kv(etcd.endpoint).put(key, "level: info\nlimit: 1\n")
    monkeypatch.setenv("FLEET_AUDIT_DIR", str(tmp_path))
    fleet = Fleet(etcd.endpoint, key, [f"i{n}" for n in range(3)], lease_ttl=2, log_dir=tmp_path)
    try:
        fleet.wait_ready()
        fleet.wait_all(lambda r: r.acked, what="three ACKs")
        yield fleet
    finally:
        fleet.close()


def at(fleet: Fleet) -> tuple[str, ...]:
    return ("--etcd", fleet.endpoint, "--key", fleet.key)


def values(fleet: Fleet, path: str) -> dict[str, Any]:
    return {name: inst.current()[path] for name, inst in fleet.instances.items()}


def audit(fleet: Fleet, name: str) -> list[dict[str, Any]]:
    text = (fleet.log_dir / f"{name}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def entries(fleet: Fleet) -> list[dict[str, Any]]:
    got = Kv(fleet.endpoint).get(fleet.key + ".overrides")
    return json.loads(got[0])["entries"] if got else []


def test_set_reaches_every_instance_then_expires_everywhere(fleet: Fleet) -> None:
    """`set level=debug --for 3s`: every instance applies it (audited as alice's, trigger
    override), `status --etcd` lists it with its expiry and no value; at the expiry every
    instance drops it by itself (none before it), audited as `override-expired`."""
    code, out, err = cli("set", "level=debug", "--for", "3s", *at(fleet), "--actor", "alice", "--timeout", "10")
    assert code == 0 and "3 of 3 instances applied it" in out, (out, err)
    assert values(fleet, "level") == dict.fromkeys(fleet.instances, "debug")
    (entry,) = entries(fleet)
    expires = parse_ts(entry["expires"])
    assert entry["actor"] == "alice" and expires is not None

    code, out, _ = cli("status", *at(fleet))
    assert code == 0 and "level" in out and "alice" in out and entry["expires"] in out, out
    assert "debug" not in out  # values are not shown (a value may be a credential)
    assert "3 of 3 instances read overrides #1" in out
    code, out, _ = cli("status", *at(fleet), "--json")
    doc = json.loads(out)
    assert [e["path"] for e in doc["overrides"]] == ["level"] and "value" not in doc["overrides"][0]
    assert all(i["overrides"][0]["actor"] == "alice" for i in doc["instances"])

    for name in fleet.instances:
        (record,) = [r for r in audit(fleet, name) if r["trigger"] == "override"]
        assert record["actor"] == "alice" and [c["path"] for c in record["changes"]] == ["level"]

    fleet.wait_all(lambda r: r.overrides == (), what="the expiry everywhere", timeout=20)
    assert values(fleet, "level") == dict.fromkeys(fleet.instances, "info")
    for name in fleet.instances:
        (record,) = [r for r in audit(fleet, name) if r["trigger"] == "override-expired"]
        assert record["changes"][0]["new"] == "info"
        assert (parse_ts(record["ts"]) or 0) >= expires  # dropped at the expiry, never before
    code, out, _ = cli("status", *at(fleet))
    assert f"no fleet override in force on {fleet.key}" in out, out


def test_unset_removes_an_override_everywhere(fleet: Fleet) -> None:
    """An override without --for holds until `unset`, which every instance applies."""
    code, out, err = cli("set", "limit=5", *at(fleet), "--actor", "bob", "--timeout", "10")
    assert code == 0, (out, err)
    assert values(fleet, "limit") == dict.fromkeys(fleet.instances, 5)
    assert entries(fleet)[0]["expires"] is None
    code, out, err = cli("unset", "limit", *at(fleet), "--actor", "bob", "--timeout", "10")
    assert code == 0 and "unset #2: 3 of 3 instances applied it" in out, (out, err)
    assert values(fleet, "limit") == dict.fromkeys(fleet.instances, 1)
    assert entries(fleet) == []


def test_a_restart_only_override_is_refused(fleet: Fleet) -> None:
    """With --schema the CLI refuses `server.port` before writing anything; without it
    every instance refuses it (named, one line each), and it is taken back out."""
    code, out, err = cli("set", "server.port=9", *at(fleet), "--schema", SCHEMA)
    assert code == 1 and "server.port: restart-only" in err and "nothing written" in err, (out, err)
    assert Kv(fleet.endpoint).get(fleet.key + ".overrides") is None

    code, out, err = cli("set", "server.port=9", *at(fleet), "--timeout", "10")
    assert code == 1, (out, err)
    for name in fleet.instances:
        assert f"{name}: refused: server.port: restart-only" in err, err
    assert "taken back out" in err and entries(fleet) == []
    fleet.wait_all(lambda r: r.acked and r.overrides_refused == (), what="every instance clean again")
    assert {i.current()["server"]["port"] for i in fleet.instances.values()} == {8080}


def test_an_override_invalid_for_the_schema_is_nacked_and_reported(fleet: Fleet) -> None:
    """`level=loud` fails the instances' validation: each NACKs it, the CLI names each and
    the reason, takes it back out, and the fleet ACKs its document again. With --schema
    the CLI refuses it first, naming the field and the override."""
    code, out, err = cli("set", "level=loud", *at(fleet), "--timeout", "10")
    assert code == 1 and "taken back out" in err, (out, err)
    for name in fleet.instances:
        (line,) = [x for x in err.splitlines() if x.startswith(f"{name}: refused: invalid")]
        assert "level: must be one of" in line and "override:" in line, line
    assert entries(fleet) == []
    fleet.wait_all(lambda r: r.acked, what="ACKs again once it is taken out")
    assert values(fleet, "level") == dict.fromkeys(fleet.instances, "info")

    code, out, err = cli("set", "level=loud", *at(fleet), "--schema", SCHEMA)
    assert code == 1 and "level: must be one of" in err and "nothing written" in err, (out, err)


def test_an_instance_started_after_the_override_adopts_it(fleet: Fleet) -> None:
    """A fleet override (here a key of a mapping field) is part of what a new instance
    loads at start: it comes up with it."""
    code, out, err = cli("set", "flags.beta=true", *at(fleet), "--actor", "carol", "--timeout", "10")
    assert code == 0, (out, err)
    late = fleet.spawn("i3")
    late.wait_ready(30)
    assert late.current()["flags"] == {"beta": True}
    rows = fleet.wait_all(lambda r: r.acked and r.overrides_seq == 1, what="i3 on the override")
    assert rows["i3"].overrides[0]["actor"] == "carol"


def test_fleet_rollback_by_version_and_digest(fleet: Fleet) -> None:
    """Two revisions later `rollback 2` (a version every instance agrees on) brings the
    fleet back to limit 2; an instance started since does not have that digest in its
    history and says so, by name, while the others answer it."""
    kv = Kv(fleet.endpoint)
    for limit in (2, 3):
        revision = kv.put(fleet.key, f"level: info\nlimit: {limit}\n")
        fleet.wait_all(lambda r, rev=revision: r.acked and r.applied_revision == rev, what=f"limit {limit}")
    rows = fleet.rows()
    digest = dict(rows["i0"].history)[2]
    assert {dict(r.history)[2] for r in rows.values()} == {digest}

    code, out, err = cli("rollback", "2", *at(fleet), "--actor", "ops")
    assert code == 0 and "3 of 3 instances applied it" in out, (out, err)
    assert values(fleet, "limit") == dict.fromkeys(fleet.instances, 2)
    assert all(r.digest == digest for r in fleet.rows().values())
    for name in fleet.instances:
        assert [r["actor"] for r in audit(fleet, name) if r["trigger"] == "rollback"] == ["ops"]

    late = fleet.spawn("i3")
    late.wait_ready(30)
    fleet.wait_all(lambda r: r.acked, what="i3 up")
    code, out, err = cli("rollback", digest[:12], *at(fleet), "--actor", "ops")
    assert code == 1 and "3 of 4 instances applied it, 1 refused" in err, (out, err)
    (line,) = [x for x in err.splitlines() if x.startswith("i3: refused:")]
    assert f"digest {digest[:12]!r} is not in history" in line, line

    code, out, err = cli("rollback", "7", *at(fleet))
    assert code == 1 and "version 7 is not in the history" in err, err
    code, out, err = cli("rollback", "xyz", *at(fleet))
    assert code == 1 and err.count("\n") == 1 and "expected a VERSION or a DIGEST" in err, err


def test_a_deleted_control_or_overrides_key_starts_a_new_sequence(fleet: Fleet) -> None:
    """The control key deleted after a rollback: the next rollback is #2, past what every
    instance reports, and runs everywhere. Before, it was #1 again: every instance took it
    for the one it had run and the CLI counted their old answers, "3 of 3 applied it", with
    the fleet left where it was. The same for the overrides key."""
    kv = Kv(fleet.endpoint)
    for limit in (2, 3):
        revision = kv.put(fleet.key, f"level: info\nlimit: {limit}\n")
        fleet.wait_all(lambda r, rev=revision: r.acked and r.applied_revision == rev, what=f"limit {limit}")
    digest = dict(fleet.rows()["i0"].history)[2]
    code, out, err = cli("rollback", digest[:12], *at(fleet), "--actor", "ops")
    assert code == 0 and values(fleet, "limit") == dict.fromkeys(fleet.instances, 2), (out, err)
    revision = kv.put(fleet.key, "level: info\nlimit: 4\n")
    fleet.wait_all(lambda r: r.acked and r.applied_revision == revision and r.command_seq == 1, what="limit 4")
    kv.delete(fleet.key + ".control")
    code, out, err = cli("rollback", digest[:12], *at(fleet), "--actor", "ops")
    assert code == 0 and "3 of 3 instances applied it" in out, (out, err)
    assert values(fleet, "limit") == dict.fromkeys(fleet.instances, 2)
    assert {r.command_seq for r in fleet.rows().values()} == {2}

    code, out, err = cli("set", "level=debug", *at(fleet), "--actor", "ops", "--timeout", "10")
    assert code == 0 and values(fleet, "level") == dict.fromkeys(fleet.instances, "debug"), (out, err)
    kv.delete(fleet.key + ".overrides")
    fleet.wait_all(lambda r: not r.overrides, what="the overrides gone with their key")
    code, out, err = cli("set", "level=warning", *at(fleet), "--actor", "ops", "--timeout", "10")
    assert code == 0 and values(fleet, "level") == dict.fromkeys(fleet.instances, "warning"), (out, err)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("set", "level=debug"), "give --state-dir DIR (one host) or --etcd URL --key KEY"),
        (("set", "level=debug", "--state-dir", "d", "--etcd", "http://127.0.0.1:2379", "--key", "k"), "not both"),
        (("unset", "level", "--etcd", "http://127.0.0.1:2379"), "--etcd needs --key KEY"),
        (("rollback", "zz", "--etcd", "http://127.0.0.1:2379", "--key", "k"), "expected a VERSION or a DIGEST"),
        (("set", "level=debug", "--for", "soon", "--etcd", "http://127.0.0.1:2379", "--key", "k"), "for:"),
    ],
)
def test_bad_fleet_arguments_get_one_line(args: tuple[str, ...], says: str) -> None:
    """Each mistake: exit 1 and one line on stderr saying what to give."""
    code, _out, err = cli(*args)
    assert code == 1 and err.count("\n") == 1 and says in err and err.startswith("selreload: error: "), err


@pytest.mark.parametrize(
    "args",
    [
        ("set", "level=debug"),
        ("unset", "level"),
        ("status",),
        ("rollback", "1"),
        ("rollback", "0123abcd"),
        ("rollout", "status"),
        ("rollout", "abort"),
        ("rollout", "resume"),
    ],
)
def test_an_unreachable_etcd_is_one_line(args: tuple[str, ...]) -> None:
    """No etcd at the endpoint: every fleet command says so in one line, exit 1."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    code, _out, err = cli(*args, "--etcd", endpoint, "--key", "/k", "--timeout", "1")
    assert code == 1 and err.count("\n") == 1 and f"cannot reach etcd at {endpoint[7:]}" in err, err

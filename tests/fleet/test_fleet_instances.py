"""Five instances as separate processes on one etcd key: ACK, NACK, leases, etcd restarts."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest

from .conftest import Kv
from .etcd_server import EtcdServer
from .instances import Fleet, wait_for

pytestmark = pytest.mark.etcd

LEASE_TTL = 2
_limits = itertools.count(100)


def document(limit: int, *, port: int = 8080, level: str = "info") -> str:
    return f"server:\n  port: {port}\nlevel: {level}\nlimit: {limit}\n"


@pytest.fixture(scope="module")
def fleet(etcd: EtcdServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Five worker processes (`i0`..`i4`) running `sr.Etcd` on one fresh key."""
    key = f"/fleet/{uuid.uuid4().hex[:12]}/config"
    Kv(etcd.endpoint).put(key, document(1))
    fleet = Fleet(
        etcd.endpoint, key, [f"i{n}" for n in range(5)], lease_ttl=LEASE_TTL, log_dir=tmp_path_factory.mktemp("fleet")
    )
    try:
        fleet.wait_ready()
        yield fleet
    finally:
        fleet.close()


def put_and_wait_applied(fleet: Fleet, kv: Kv, text: str) -> int:
    rev = kv.put(fleet.key, text)
    fleet.wait_all(lambda r: r.applied_revision == rev and r.acked, what=f"every instance on revision {rev}")
    return rev


def test_a_put_is_applied_and_acked_by_all_five(fleet: Fleet, kv: Kv) -> None:
    """After one put, all five instances run it and ACK its revision."""
    limit = next(_limits)
    rev = kv.put(fleet.key, document(limit))
    rows = fleet.wait_all(lambda r: r.revision == rev, what=f"five reports on revision {rev}")
    assert {(r.outcome, r.applied_revision) for r in rows.values()} == {("applied", rev)}
    assert {inst.current()["limit"] for inst in fleet.instances.values()} == {limit}
    assert fleet.status().render().splitlines()[-1] == f"5 of 5 instances on the latest revision {rev}"


def test_a_restart_only_change_shows_every_instances_rejected_paths(fleet: Fleet, kv: Kv) -> None:
    """A put changing `server.port` (restart-only) and `limit` (hot): the hot change goes live
    everywhere, and every row lists `server.port` as rejected until the port is put back."""
    limit = next(_limits)
    rev = kv.put(fleet.key, document(limit, port=9090))
    rows = fleet.wait_all(lambda r: r.revision == rev, what=f"five reports on revision {rev}")
    assert {(r.outcome, r.rejected) for r in rows.values()} == {("applied", ("server.port",))}
    for inst in fleet.instances.values():
        live = inst.current()
        assert (live["server"]["port"], live["limit"]) == (8080, limit)
    assert "server.port" in fleet.status().render()
    rev = put_and_wait_applied(fleet, kv, document(limit))
    assert all(r.rejected == () for r in fleet.rows().values())


def test_an_invalid_document_is_nacked_by_all_five_with_the_old_config_live(fleet: Fleet, kv: Kv) -> None:
    """A document forced into etcd that fails validation, then one that fails to parse: each
    is NACKed by all five with its revision and place, and the old config stays live."""
    limit = next(_limits)
    good = put_and_wait_applied(fleet, kv, document(limit))
    bad = kv.put(fleet.key, document(limit + 1, level="verbose"))
    rows = fleet.wait_all(lambda r: r.revision == bad, what=f"five NACKs of revision {bad}")
    for row in rows.values():
        assert (row.outcome, row.applied_revision) == ("invalid", good)
        assert row.errors[0].startswith(f"etcd:{fleet.key}@{bad}:3:8: level: must be one of")
    for inst in fleet.instances.values():
        live = inst.current()
        assert (live["level"], live["limit"]) == ("info", limit)
    summary = fleet.status().render().splitlines()[-1]
    assert summary == f"0 of 5 instances on the latest revision {bad} (5 refused it)"

    broken = kv.put(fleet.key, "level: [debug\n")
    rows = fleet.wait_all(lambda r: r.revision == broken, what=f"five NACKs of revision {broken}")
    assert all(r.outcome == "invalid" and f"@{broken}:1:8: YAML syntax error" in r.errors[0] for r in rows.values())
    assert {inst.current()["limit"] for inst in fleet.instances.values()} == {limit}
    put_and_wait_applied(fleet, kv, document(limit))


def test_a_killed_instance_disappears_when_its_lease_expires(fleet: Fleet, kv: Kv) -> None:
    """SIGKILL (no clean stop, no revoke): the row goes once the lease expires; the rest stay."""
    doomed = fleet.spawn("doomed")
    try:
        doomed.wait_ready(60)
        wait_for(lambda: "doomed" in fleet.rows(), timeout=15, what="the new instance's row")
        doomed.kill()
        assert "doomed" in fleet.rows()  # still there: the lease has not expired yet
        wait_for(lambda: "doomed" not in fleet.rows(), timeout=LEASE_TTL + 15, what="the dead instance's row to go")
    finally:
        del fleet.instances["doomed"]
        doomed.close()
    assert sorted(fleet.rows()) == sorted(fleet.instances)


def test_stopping_and_restarting_etcd_loses_no_update(fleet: Fleet, kv: Kv, etcd: EtcdServer) -> None:
    """A put right before etcd stops, and one right after it restarts: every instance ends
    on each of them (it reconnects, catches up, and the live config stays meanwhile)."""
    previous = fleet.instances["i0"].current()["limit"]
    limit = next(_limits)
    before = kv.put(fleet.key, document(limit))
    etcd.stop()
    # Meanwhile every instance keeps serving a live config (the old one or the new one).
    assert {inst.current()["limit"] for inst in fleet.instances.values()} <= {previous, limit}
    etcd.start()
    fleet.wait_all(lambda r: r.applied_revision == before, what=f"every instance on revision {before}")
    limit = next(_limits)
    after = put_and_wait_applied(fleet, kv, document(limit))
    assert fleet.status().on_latest == 5
    assert {inst.current()["limit"] for inst in fleet.instances.values()} == {limit}
    assert after > before

"""Many instances in one process on one shared etcd client: every one applies and ACKs, and
the last one to stop closes the client."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator

import pytest

import selreload as sr
from selreload._etcd_shared import SharedClient, shared_clients

from .conftest import Kv
from .etcd_server import EtcdServer
from .instances import Instance, wait_for
from .worker import App, capacity_check

pytestmark = pytest.mark.etcd

IN_PROCESS = 100


def document(limit: int) -> str:
    return f"server:\n  port: 8080\nlevel: info\nlimit: {limit}\n"


def acks(kv: Kv, key: str, rev: int) -> dict[str, dict[str, object]]:
    """The status rows under `key` that ACK `rev`, by instance."""
    rows = {k: json.loads(v) for k, v in kv.prefix(f"{key}.status/").items()}
    return {r["instance"]: r for r in rows.values() if r["applied_revision"] == rev and r["outcome"] == "applied"}


def all_acked(kv: Kv, key: str, rev: int, count: int) -> dict[str, dict[str, object]] | None:
    rows = acks(kv, key, rev)
    return rows if len(rows) == count else None


def shared_client(reloader: sr.Reloader[App]) -> SharedClient:
    client = reloader.sources[0]._shared  # type: ignore[attr-defined]
    assert isinstance(client, SharedClient)
    return client


@pytest.fixture
def hundred(etcd: EtcdServer, kv: Kv) -> Iterator[tuple[str, list[sr.Reloader[App]]]]:
    """100 Reloaders in this process, each on its own `sr.Etcd` of one key."""
    key = f"/scale/{uuid.uuid4().hex[:12]}/config"
    kv.put(key, document(1))
    reloaders: list[sr.Reloader[App]] = []
    try:
        for n in range(IN_PROCESS):
            name = f"s{n}"
            reloader = sr.Reloader(App, [sr.Etcd(etcd.endpoint, key, instance=name, lease_ttl=5)], name=name)
            reloader.on("limit", capacity_check)
            reloader.start()
            reloaders.append(reloader)
        yield key, reloaders
    finally:
        for reloader in reloaders:
            reloader.stop()


def test_a_hundred_instances_in_one_process_share_one_client_and_all_ack(
    hundred: tuple[str, list[sr.Reloader[App]]], kv: Kv
) -> None:
    """One put: each of the 100 instances applies it (its own snapshot, same digest) and
    writes its own ACK of that revision under its own lease, all over one client."""
    key, reloaders = hundred
    client = shared_client(reloaders[0])
    assert all(shared_client(r) is client for r in reloaders) and client.users == IN_PROCESS
    assert len(client.dispatcher._threads) <= client.dispatcher.max_threads
    rev = kv.put(key, document(42))
    rows = wait_for(lambda: all_acked(kv, key, rev, IN_PROCESS), timeout=15, what="100 ACKs")
    assert sorted(rows) == sorted(r.name for r in reloaders)
    assert len({row["digest"] for row in rows.values()}) == 1
    assert len({row["reloader"] for row in rows.values()}) == 1  # one process: one hostname:pid
    for reloader in reloaders:
        assert reloader.current.limit == 42
        assert reloader.snapshot is not None and reloader.snapshot.digest == rows[reloader.name]["digest"]
    # Each status key under a lease of its own: 100 instances, 100 leases.
    assert len({r.sources[0]._watch._lease for r in reloaders}) == IN_PROCESS  # type: ignore[attr-defined]


def test_the_last_instance_to_stop_closes_the_shared_client(
    hundred: tuple[str, list[sr.Reloader[App]]], kv: Kv
) -> None:
    """Stopping 99 instances leaves the client (and the one left still applies puts);
    stopping the last closes it: no client, no etcd thread, and every status row gone."""
    key, reloaders = hundred
    client = shared_client(reloaders[0])
    for reloader in reloaders[:-1]:
        reloader.stop()
    assert client in shared_clients() and client.users == 1
    rev = kv.put(key, document(7))
    wait_for(lambda: acks(kv, key, rev).get(reloaders[-1].name), timeout=10, what="the last instance's ACK")
    assert reloaders[-1].current.limit == 7
    reloaders[-1].stop()
    assert client not in shared_clients() and client.users == 0
    assert client.runner.loop.is_closed() and client.channel.client is None
    assert not client.runner._thread.is_alive() and client.dispatcher._threads == []
    assert kv.prefix(f"{key}.status/") == {}  # revoked on stop, not left to expire


def test_sources_on_different_clusters_or_credentials_do_not_share(etcd: EtcdServer, kv: Kv, key: str) -> None:
    """The client is keyed by the whole access (endpoints, TLS, user, timeout)."""
    kv.put(key, document(1))
    a = sr.Etcd(etcd.endpoint, key, instance="a")
    b = sr.Etcd(etcd.endpoint, key, instance="b")
    c = sr.Etcd(etcd.endpoint, key, instance="c", timeout=3.0)
    try:
        for source in (a, b, c):
            source.load()
        assert a._shared is b._shared and a._shared is not c._shared
        assert a._shared is not None and c._shared is not None
        assert (a._shared.users, c._shared.users) == (2, 1)
        clients = [a._shared, c._shared]
    finally:
        for source in (a, b, c):
            source.close()
    assert not any(x in shared_clients() for x in clients)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_does_not_inherit_the_shared_client(etcd: EtcdServer, kv: Kv, key: str) -> None:
    """After fork() the child forgets the parent's client (its loop thread is not there):
    the inherited source joins a client of the child's own, which the child closes, and
    the parent's goes on serving the parent. (gRPC itself cannot carry a channel that was
    in use across fork(): the child makes no etcd call here; start Reloaders after fork.)"""
    kv.put(key, document(3))
    parent = sr.Etcd(etcd.endpoint, key, instance="parent")
    parent.load()
    client = parent._shared
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            forgot = shared_clients() == []
            runner = parent._loop()  # what load() and watch() do first
            mine = parent._shared
            ok = forgot and mine is not client and mine is not None and runner is mine.runner and mine.users == 1
            parent._release()
            ok = ok and shared_clients() == [] and runner.loop.is_closed()
            os.write(write, b"ok" if ok else b"bad")
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    try:
        answer = os.read(read, 16)
        _, status = os.waitpid(pid, 0)
        assert (answer, os.waitstatus_to_exitcode(status)) == (b"ok", 0)
        rev = kv.put(key, document(4))
        layer = parent.load()
        assert (parent._shared, layer.revision, layer.tree["limit"]) == (client, rev, 4)
    finally:
        os.close(read)
        parent.close()
    assert client not in shared_clients()


def test_a_host_process_runs_many_instances(etcd: EtcdServer, kv: Kv, tmp_path: pytest.TempPathFactory) -> None:
    """`worker.py --count 50` (the benchmark's host): 50 instances in a second process, all
    on the revision put, each with its own status row."""
    key = f"/scale/{uuid.uuid4().hex[:12]}/config"
    kv.put(key, document(1))
    host = Instance(etcd.endpoint, key, "h", 5, tmp_path, count=50)  # type: ignore[arg-type]
    try:
        host.wait_ready(60)
        rev = kv.put(key, document(9))
        rows = wait_for(lambda: all_acked(kv, key, rev, 50), timeout=15, what="50 ACKs")
        assert sorted(rows) == sorted(host.names)
        versions = host.ask("versions")
        assert {digest for _, digest in versions.values()} == {next(iter(rows.values()))["digest"]}
    finally:
        host.close()


def test_leases_stay_alive_over_the_shared_keepalive_stream(etcd: EtcdServer, kv: Kv, key: str) -> None:
    """Twenty instances with 1-second leases: every status row outlives three TTLs (the
    keepalives of all twenty go over one stream), and goes at once on stop."""
    kv.put(key, document(1))
    reloaders = []
    try:
        for n in range(20):
            reloader = sr.Reloader(App, [sr.Etcd(etcd.endpoint, key, instance=f"k{n}", lease_ttl=1)], name=f"k{n}")
            reloader.start()
            reloaders.append(reloader)
        wait_for(lambda: len(kv.prefix(f"{key}.status/")) == 20, timeout=10, what="20 status rows")
        leases = {r.sources[0]._watch._lease for r in reloaders}  # type: ignore[attr-defined]
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            assert len(kv.prefix(f"{key}.status/")) == 20
            time.sleep(0.2)
        assert {r.sources[0]._watch._lease for r in reloaders} == leases  # type: ignore[attr-defined]
    finally:
        for reloader in reloaders:
            reloader.stop()
    assert kv.prefix(f"{key}.status/") == {}

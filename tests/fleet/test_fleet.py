"""`fleet_status` and `push` against a real etcd, with real in-process instances."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

import selreload as sr
from selreload._fleet import FleetRow, fleet_status, plan_push, push

from .conftest import Kv
from .etcd_server import EtcdServer
from .instances import wait_for
from .worker import App

pytestmark = pytest.mark.etcd

BASE = "server:\n  port: 8080\nlevel: info\nlimit: 1\ntoken: old-secret-value\n"


@pytest.fixture
def two(etcd: EtcdServer, kv: Kv, key: str) -> Iterator[list[sr.Reloader[App]]]:
    """Two instances, `a` and `b`, on one key holding BASE."""
    kv.put(key, BASE)
    reloaders = [
        sr.Reloader(App, [sr.Etcd(etcd.endpoint, key, instance=name, lease_ttl=2)], name=name) for name in "ab"
    ]
    for r in reloaders:
        r.start()
    try:
        yield reloaders
    finally:
        for r in reloaders:
            r.stop()


def rows_at(etcd: EtcdServer, key: str, revision: int, count: int) -> dict[str, FleetRow]:
    """Wait until `count` instances report on `revision`."""

    def check() -> dict[str, FleetRow] | None:
        rows = {r.instance: r for r in fleet_status(etcd.endpoint, key).rows}
        return rows if len(rows) == count and all(r.revision == revision for r in rows.values()) else None

    return wait_for(check, timeout=15, what=f"{count} reports on revision {revision}")


def test_fleet_status_shows_each_instance_and_the_summary(
    two: list[sr.Reloader[App]], etcd: EtcdServer, kv: Kv, key: str
) -> None:
    """One row per instance with the revision it runs; the summary counts those on the latest."""
    rev = kv.put(key, BASE.replace("limit: 1", "limit: 2"))
    rows = rows_at(etcd, key, rev, 2)
    assert sorted(rows) == ["a", "b"]
    assert all(r.outcome == "applied" and r.applied_revision == rev and r.version == 2 for r in rows.values())
    status = fleet_status(etcd.endpoint, key)
    assert status.latest_revision == rev
    text = status.render()
    assert text.splitlines()[0].split() == ["INSTANCE", "VERSION", "APPLIED", "LAST", "OUTCOME", "REJECTED", "ERRORS"]
    assert text.splitlines()[-1] == f"2 of 2 instances on the latest revision {rev}"
    doc = status.to_json()
    assert (doc["key"], doc["latest_revision"], doc["on_latest"], doc["total"]) == (key, rev, 2, 2)
    assert [i["instance"] for i in doc["instances"]] == ["a", "b"]


def test_fleet_status_counts_a_refused_revision(
    two: list[sr.Reloader[App]], etcd: EtcdServer, kv: Kv, key: str
) -> None:
    """A revision both instances NACK: none is on it, the errors show, the summary says so."""
    good = kv.get(key)
    assert good is not None
    bad = kv.put(key, "level: loud\n")
    rows = rows_at(etcd, key, bad, 2)
    assert all(r.outcome == "invalid" and r.applied_revision == good[1] for r in rows.values())
    text = fleet_status(etcd.endpoint, key).render()
    assert f"etcd:{key}@{bad}:1:8: level: must be one of" in text
    assert text.splitlines()[-1] == f"0 of 2 instances on the latest revision {bad} (2 refused it)"


def test_fleet_status_of_a_missing_key(etcd: EtcdServer, key: str) -> None:
    """No key and no instance: no latest revision, and the summary says the key is missing."""
    status = fleet_status(etcd.endpoint, key)
    assert (status.latest_revision, status.rows) == (None, ())
    assert status.render().splitlines()[-1] == f"{key} does not exist in etcd; 0 instances reporting"


def test_push_writes_a_valid_document_and_plans_it_against_etcd(
    etcd: EtcdServer, kv: Kv, key: str, tmp_path: pathlib.Path
) -> None:
    """A valid file is written (exit 0) with a plan of hot, restart-only and secret changes."""
    kv.put(key, BASE)
    doc = tmp_path / "new.yaml"
    doc.write_text("server:\n  port: 9090\nlevel: info\nlimit: 5\ntoken: new-secret-value\n")
    result = push(etcd.endpoint, key, App, doc)
    assert result.exit_code == 0, result.message
    held = kv.get(key)
    assert held == (doc.read_bytes(), result.revision)
    assert f"at revision {result.revision}" in result.message
    lines = {line.split()[0]: line for line in result.plan.splitlines()}
    assert lines["limit"].split()[1:3] == ["1", "5"] and "apply" in lines["limit"]
    assert "reject: restart required" in lines["server.port"]
    assert "***" in lines["token"]
    assert "secret-value" not in result.plan


def test_push_refuses_an_invalid_document_and_writes_nothing(
    etcd: EtcdServer, kv: Kv, key: str, tmp_path: pathlib.Path
) -> None:
    """An invalid file exits 1, names the place of each error, and leaves the key as it was."""
    before = kv.put(key, BASE)
    doc = tmp_path / "bad.yaml"
    doc.write_text("level: loud\nlimit: many\n")
    result = push(etcd.endpoint, key, App, doc)
    assert result.exit_code == 1
    assert f"{doc}:1:8: level: must be one of" in result.plan
    assert f"{doc}:2:8: limit:" in result.plan
    assert kv.get(key) == (BASE.encode(), before)


def test_push_refuses_broken_yaml(etcd: EtcdServer, kv: Kv, key: str, tmp_path: pathlib.Path) -> None:
    """A YAML syntax error exits 1 at its line:col; nothing is written."""
    before = kv.put(key, BASE)
    doc = tmp_path / "broken.yaml"
    doc.write_text("level: info\nlimit: [1\n")
    result = push(etcd.endpoint, key, App, doc)
    assert result.exit_code == 1
    assert f"{doc}:2:8: YAML syntax error: '[' is not closed" in result.plan
    assert kv.get(key) == (BASE.encode(), before)


def test_push_fails_with_3_when_the_key_moved_since_the_plan(
    etcd: EtcdServer, kv: Kv, key: str, tmp_path: pathlib.Path
) -> None:
    """Compare-and-swap: a write between plan and push exits 3 and keeps the other write."""
    planned_at = kv.put(key, BASE)
    doc = tmp_path / "new.yaml"
    doc.write_text(BASE.replace("limit: 1", "limit: 5"))
    plan = plan_push(etcd.endpoint, key, App, doc)
    assert plan.base_revision == planned_at
    theirs = BASE.replace("limit: 1", "limit: 6")
    moved_to = kv.put(key, theirs)
    result = plan.write()
    assert result.exit_code == 3
    assert result.revision == moved_to
    assert f"moved from revision {planned_at} to revision {moved_to}" in result.message
    assert kv.get(key) == (theirs.encode(), moved_to)


def test_push_creates_a_missing_key(etcd: EtcdServer, kv: Kv, key: str, tmp_path: pathlib.Path) -> None:
    """A key that does not exist yet is created (its CAS compares against 'no key')."""
    doc = tmp_path / "first.yaml"
    doc.write_text(BASE)
    result = push(etcd.endpoint, key, App, doc)
    assert result.exit_code == 0, result.message
    assert "does not exist" in result.plan
    assert kv.get(key) == (BASE.encode(), result.revision)


def test_push_of_the_same_document_writes_nothing(etcd: EtcdServer, kv: Kv, key: str, tmp_path: pathlib.Path) -> None:
    """Pushing what etcd already holds exits 0 without a new revision."""
    rev = kv.put(key, BASE)
    doc = tmp_path / "same.yaml"
    doc.write_text(BASE)
    result = push(etcd.endpoint, key, App, doc)
    assert (result.exit_code, result.revision, result.plan) == (0, rev, "no changes")
    assert "nothing written" in result.message
    assert kv.get(key) == (BASE.encode(), rev)

"""Progressive rollout with five real instances: promoted after the bake; a NACK or an
unhealthy canary reverts the canaries, and the fleet never goes past them."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator

import pytest

from selreload._etcd_access import access
from selreload._fleet import plan_push
from selreload._rollout import Rollout

from .conftest import Kv
from .etcd_server import EtcdServer
from .instances import Fleet
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

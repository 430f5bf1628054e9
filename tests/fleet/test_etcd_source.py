"""`sr.Etcd` in one process against a real etcd: load, origins, watch, status, faults."""

from __future__ import annotations

import json
import logging
import pathlib
import threading
from typing import Any

import pytest

import selreload as sr

from .conftest import BASE, Kv
from .etcd_server import EtcdServer, free_port
from .instances import wait_for
from .worker import App

pytestmark = pytest.mark.etcd


def status_of(kv: Kv, key: str, instance: str = "solo") -> dict[str, Any] | None:
    raw = kv.prefix(f"{key}.status/").get(f"{key}.status/{instance}")
    return json.loads(raw) if raw is not None else None


def test_origins_name_the_key_the_revision_and_the_line(etcd: EtcdServer, kv: Kv, key: str) -> None:
    """An invalid document at start fails fast, placed at `etcd:KEY@REVISION:line:col`."""
    rev = kv.put(key, "server:\n  port: 8080\nlevel: verbose\n")
    with pytest.raises(sr.ConfigError) as err:
        sr.Reloader(App, [sr.Etcd(etcd.endpoint, key)]).start()
    assert f"etcd:{key}@{rev}:3:8: level: must be one of debug, info, warning, error" in str(err.value)


def test_a_put_is_applied_through_the_watch_with_its_origin(started: sr.Reloader[App], kv: Kv, key: str) -> None:
    """A put reaches the running Reloader (trigger `etcd`) and its origins carry the revision."""
    results: list[sr.ReloadResult] = []
    started.subscribe(results.append)
    rev = kv.put(key, "server:\n  port: 8080\nlevel: info\nlimit: 7\n")
    # Subscribers run after the commit: wait for the result, not for `current`.
    wait_for(lambda: bool(results), timeout=10, what="the reload of the put")
    assert (results[-1].trigger, started.current.limit) == ("etcd", 7)
    assert started.snapshot is not None
    assert started.snapshot.origins["limit"] == f"etcd:{key}@{rev}:4:8"


def test_an_update_between_load_and_watch_is_not_missed(etcd: EtcdServer, kv: Kv, key: str) -> None:
    """watch() resumes from the revision load() read, so a put in between still notifies."""
    kv.put(key, BASE)
    source = sr.Etcd(etcd.endpoint, key, lease_ttl=2)
    try:
        assert source.load().tree == {"server": {"port": 8080}, "level": "info", "limit": 1}
        rev = kv.put(key, "limit: 2\n")  # lands after the read, before the watch exists
        fired = threading.Event()
        watcher = source.watch(lambda trigger: fired.set())
        assert watcher is not None
        try:
            assert fired.wait(10), "the put between load() and watch() was missed"
            assert source.load().name == f"etcd:{key}@{rev}"
        finally:
            watcher.stop()
    finally:
        source.close()


def test_status_is_an_ack_with_the_revision_and_stop_revokes_it(started: sr.Reloader[App], kv: Kv, key: str) -> None:
    """The instance writes an ACK of the revision it applied; stop() removes the row at once."""
    rev = kv.put(key, "server:\n  port: 8080\nlevel: debug\nlimit: 1\n")
    status = wait_for(
        lambda: (s := status_of(kv, key)) and s["revision"] == rev and s, timeout=10, what="ACK of the put"
    )
    assert status["instance"] == "solo"
    assert status["outcome"] == "applied"
    assert status["applied_revision"] == rev
    assert status["version"] == 2
    assert status["rejected"] == [] and status["errors"] == []
    assert isinstance(status["ts"], str)
    started.stop()
    assert status_of(kv, key) is None


def test_a_deleted_key_keeps_the_live_config_and_warns(
    started: sr.Reloader[App], kv: Kv, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Deleting the key keeps the live config (with a warning); a new put is applied again."""
    caplog.set_level(logging.WARNING, logger="selreload.etcd")
    kv.delete(key)
    result = started.reload()
    assert result.outcome is sr.Outcome.UNCHANGED
    assert started.current.limit == 1
    assert any("was deleted" in r.getMessage() for r in caplog.records)
    kv.put(key, "limit: 3\n")
    wait_for(lambda: started.current.limit == 3, timeout=10, what="the key coming back")


def test_a_missing_key_at_start_fails_fast(etcd: EtcdServer, key: str) -> None:
    """No document at the key: start() raises, naming the key."""
    with pytest.raises(sr.ConfigError, match="etcd key does not exist") as err:
        sr.Reloader(App, [sr.Etcd(etcd.endpoint, key)]).start()
    assert f"etcd:{key}" in str(err.value)


def test_unreachable_etcd_at_start_fails_fast() -> None:
    """Nothing listening at the endpoint: start() raises a ConfigError naming the endpoint."""
    port = free_port()
    with pytest.raises(sr.ConfigError, match=f"cannot read from etcd at 127.0.0.1:{port}"):
        sr.Reloader(App, [sr.Etcd(f"http://127.0.0.1:{port}", "/nowhere", timeout=2.0)]).start()


def test_layered_with_a_yaml_file(etcd: EtcdServer, kv: Kv, key: str, tmp_path: pathlib.Path) -> None:
    """A file below etcd: etcd's values win, the file's others stay, origins say which."""
    base = tmp_path / "base.yaml"
    base.write_text("level: debug\nlimit: 1\n")
    rev = kv.put(key, "limit: 5\n")
    reloader = sr.Reloader(App, [sr.YamlFile(base), sr.Etcd(etcd.endpoint, key, lease_ttl=2)])
    with reloader:
        assert (reloader.current.level, reloader.current.limit) == ("debug", 5)
        assert reloader.snapshot is not None
        assert reloader.snapshot.origins["limit"] == f"etcd:{key}@{rev}:1:8"
        assert reloader.snapshot.origins["level"].startswith(f"{base}:1:")


def test_a_nack_names_the_refused_revision_and_masks_secrets(started: sr.Reloader[App], kv: Kv, key: str) -> None:
    """An invalid document is NACKed with its revision; the old config stays; no secret leaks."""
    bad = kv.put(key, "token: [hunter2-secret]\nlimit: many\n")
    status = wait_for(
        lambda: (s := status_of(kv, key)) and s["revision"] == bad and s, timeout=10, what="NACK of the put"
    )
    assert status["outcome"] == "invalid"
    assert status["applied_revision"] < bad
    assert any(f"etcd:{key}@{bad}:2:8: limit:" in e for e in status["errors"])
    assert "hunter2" not in json.dumps(status)
    assert started.current.limit == 1


def test_a_nack_keeps_the_pending_restart_in_the_status(started: sr.Reloader[App], kv: Kv, key: str) -> None:
    """Restart-only change pending, then an invalid put: the NACK still lists the pending path."""
    pending = kv.put(key, "server:\n  port: 9090\nlevel: info\nlimit: 1\n")
    wait_for(lambda: (s := status_of(kv, key)) and s["revision"] == pending, timeout=10, what="the REJECTED report")
    status = status_of(kv, key)
    assert status is not None and (status["outcome"], status["rejected"]) == ("rejected", ["server.port"])
    bad = kv.put(key, "limit: many\n")
    status = wait_for(
        lambda: (s := status_of(kv, key)) and s["revision"] == bad and s, timeout=10, what="NACK of the put"
    )
    assert (status["outcome"], status["applied_revision"], status["rejected"]) == ("invalid", pending, ["server.port"])


def test_limits_apply_to_etcd_values(etcd: EtcdServer, kv: Kv, key: str) -> None:
    """An etcd value over `max_bytes` or over `max_nodes` is refused, naming `etcd:KEY@REV`."""
    source = sr.Etcd(etcd.endpoint, key, lease_ttl=2, max_bytes=64, max_nodes=10)
    try:
        rev = kv.put(key, BASE + "#" * 100 + "\n")
        with pytest.raises(sr.ConfigError) as info:
            source.load()
        assert str(info.value) == f"etcd:{key}@{rev}: value too large: 143 bytes, over the limit of 64 (max_bytes)"
        rev = kv.put(key, "l: [" + ", ".join("1" * 20) + "]\n")
        with pytest.raises(sr.ConfigError) as info:
            source.load()
        assert str(info.value).startswith(f"etcd:{key}@{rev}: document too large: more than 10 values")
    finally:
        source.close()

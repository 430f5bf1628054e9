"""Prometheus metrics read back from the registry: fixed names and labels, one outcome at a
time, restart pending through real file edits, and two Reloaders on one registry."""

from __future__ import annotations

import json
import os
import pathlib
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

import selreload as sr

NAMES = {
    "selreload_reloads_total",
    "selreload_reload_duration_seconds",
    "selreload_config_version",
    "selreload_last_success_timestamp_seconds",
    "selreload_restart_pending",
    "selreload_applier_failures_total",
    "selreload_audit_failures_total",
    "selreload_healthy",
}


@sr.config
class Server:
    port: int = 8080  # no policy above it: restart-only
    host: str = "127.0.0.1"


@sr.config
class App:
    server: Server = sr.field(factory=Server)
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning"]))
    workers: int = sr.hot(default=4)
    token: str = sr.secret(default="")


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Save like a careful editor: temp file, then rename over."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Failing:
    """An applier that raises on apply (and, when asked, on rollback): a fault we cannot
    cause with a real side effect."""

    def __init__(self, name: str, *, on_apply: bool = False, on_rollback: bool = False) -> None:
        self.name = name
        self.on_apply = on_apply
        self.on_rollback = on_rollback

    def apply(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.on_apply:
            raise RuntimeError(f"{self.name} cannot apply")

    def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.on_rollback:
            raise RuntimeError(f"{self.name} cannot roll back")


class Env:
    """A Reloader on a real YAML file and its own registry, plus readers for its metrics."""

    def __init__(self, tmp_path: pathlib.Path, name: str = "svc", registry: CollectorRegistry | None = None) -> None:
        self.path = tmp_path / f"{name}.yaml"
        write_atomic(self.path, "level: info\n")
        self.registry = registry if registry is not None else CollectorRegistry()
        self.name = name
        self.reloader = sr.Reloader(
            App, sources=[sr.YamlFile(self.path, watch=False)], registry=self.registry, name=name
        )

    def reload(self, text: str) -> sr.ReloadResult:
        write_atomic(self.path, text)
        return self.reloader.reload()

    def value(self, metric: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(metric, {"config": self.name, **labels})

    def count(self, outcome: str) -> float | None:
        return self.value("selreload_reloads_total", outcome=outcome)


@pytest.fixture
def env(tmp_path: pathlib.Path) -> Env:
    return Env(tmp_path)


def test_metric_names_are_exactly_the_design_ones(env: Env) -> None:
    """The registry holds exactly the documented metric families (docs/reference.md), all labelled `config`."""
    env.reloader.start()
    samples = {s.name: s for fam in env.registry.collect() for s in fam.samples}
    families = {fam.name + ("_total" if fam.type == "counter" else "") for fam in env.registry.collect()}
    assert families == NAMES
    assert all(s.labels["config"] == "svc" for s in samples.values())
    text = generate_latest(env.registry).decode()
    assert 'selreload_reloads_total{config="svc",outcome="applied"} 1.0' in text
    assert 'selreload_reload_duration_seconds_bucket{config="svc",le="0.005"}' in text


def test_every_outcome_starts_at_zero(env: Env) -> None:
    """Each outcome's counter exists at 0 before it happens, so rate() works from the start."""
    for outcome in sr.Outcome:
        assert env.count(outcome.value) == 0.0


def test_start_counts_an_applied_reload(env: Env) -> None:
    """start() counts one applied reload, sets version 1, restart pending 0, a last-success
    time, and one duration observation."""
    before = time.time()
    env.reloader.start()
    assert env.count("applied") == 1.0
    assert env.value("selreload_config_version") == 1.0
    assert env.value("selreload_restart_pending") == 0.0
    assert env.value("selreload_reload_duration_seconds_count") == 1.0
    assert (env.value("selreload_last_success_timestamp_seconds") or 0) >= before


def test_applied_reload(env: Env) -> None:
    """A hot change counts as applied and bumps the version gauge."""
    env.reloader.start()
    assert env.reload("level: debug\n").outcome is sr.Outcome.APPLIED
    assert env.count("applied") == 2.0
    assert env.value("selreload_config_version") == 2.0
    assert env.value("selreload_reload_duration_seconds_count") == 2.0
    assert (env.value("selreload_reload_duration_seconds_sum") or 0) > 0


def test_unchanged_reload(env: Env) -> None:
    """A reload of the same content counts as unchanged and refreshes last success."""
    env.reloader.start()
    first = env.value("selreload_last_success_timestamp_seconds")
    time.sleep(0.01)
    assert env.reloader.reload().outcome is sr.Outcome.UNCHANGED
    assert env.count("unchanged") == 1.0
    assert env.value("selreload_config_version") == 1.0
    assert (env.value("selreload_last_success_timestamp_seconds") or 0) > (first or 0)


def test_rejected_reload(env: Env) -> None:
    """A restart-only change counts as rejected, leaves the version, and is pending."""
    env.reloader.start()
    assert env.reload("level: info\nserver: {port: 9090}\n").outcome is sr.Outcome.REJECTED
    assert env.count("rejected") == 1.0
    assert env.value("selreload_config_version") == 1.0
    assert env.value("selreload_restart_pending") == 1.0


def test_invalid_reload(env: Env) -> None:
    """An invalid file counts as invalid and does not move last success or the version."""
    env.reloader.start()
    success = env.value("selreload_last_success_timestamp_seconds")
    time.sleep(0.01)
    assert env.reload("level: loud\n").outcome is sr.Outcome.INVALID
    assert env.reload("level: [\n").outcome is sr.Outcome.INVALID
    assert env.count("invalid") == 2.0
    assert env.value("selreload_config_version") == 1.0
    assert env.value("selreload_last_success_timestamp_seconds") == success
    assert env.value("selreload_reload_duration_seconds_count") == 3.0


def test_rolled_back_reload_counts_the_failing_applier(env: Env) -> None:
    """An applier failure counts as rolled_back and as one failure of that applier only."""
    broken = Failing("broken")
    env.reloader.on("level", Failing("fine"))
    env.reloader.on("workers", broken)
    env.reloader.start()
    broken.on_apply = True
    assert env.reload("level: debug\nworkers: 8\n").outcome is sr.Outcome.ROLLED_BACK
    assert env.count("rolled_back") == 1.0
    assert env.value("selreload_applier_failures_total", applier="broken") == 1.0
    assert env.value("selreload_applier_failures_total", applier="fine") == 0.0  # a series from registration
    assert env.value("selreload_config_version") == 1.0


def test_degraded_reload_counts_apply_and_rollback_failures(env: Env) -> None:
    """When the rollback fails too, the outcome is degraded and both appliers count a
    failure, once per degraded reload."""
    broken = Failing("broken")
    env.reloader.on("level", Failing("undo", on_rollback=True))
    env.reloader.on("workers", broken)
    env.reloader.start()
    broken.on_apply = True
    assert env.reload("level: debug\nworkers: 8\n").outcome is sr.Outcome.DEGRADED
    assert env.reload("level: warning\nworkers: 9\n").outcome is sr.Outcome.DEGRADED
    assert env.count("degraded") == 2.0
    assert env.value("selreload_applier_failures_total", applier="broken") == 2.0
    assert env.value("selreload_applier_failures_total", applier="undo") == 2.0
    assert env.value("selreload_config_version") == 1.0


def test_failures_at_start_are_counted(env: Env) -> None:
    """An applier that fails on the initial config counts a failure even though start()
    raises."""
    env.reloader.on("workers", Failing("broken", on_apply=True))
    with pytest.raises(sr.ApplyError):
        env.reloader.start()
    assert env.value("selreload_applier_failures_total", applier="broken") == 1.0


def test_restart_pending_follows_the_file_and_drops_back_when_reverted(env: Env) -> None:
    """restart_pending counts the restart-only leaves whose file value differs from the
    live one, across hot edits, and is 0 again once the file is reverted."""
    env.reloader.start()

    def step(text: str, outcome: sr.Outcome, pending: float) -> None:
        assert env.reload(text).outcome is outcome, text
        assert env.value("selreload_restart_pending") == pending, text

    step("level: info\nserver: {port: 9090}\n", sr.Outcome.REJECTED, 1)
    step("level: info\nserver: {port: 9090, host: 0.0.0.0}\ntoken: abc\n", sr.Outcome.REJECTED, 3)
    step("level: debug\nserver: {port: 9090, host: 0.0.0.0}\ntoken: abc\n", sr.Outcome.APPLIED, 3)
    step("level: debug\nserver: {port: 9090}\n", sr.Outcome.REJECTED, 1)
    step("level: debug\n", sr.Outcome.UNCHANGED, 0)
    step("level: info\nserver: {port: 9091}\n", sr.Outcome.APPLIED, 1)
    step("level: info\n", sr.Outcome.UNCHANGED, 0)
    step("level: info\nserver: {port: 9091}\n", sr.Outcome.REJECTED, 1)
    # The same bytes as the last reload that matched the live config: still nothing pending.
    step("level: info\n", sr.Outcome.UNCHANGED, 0)


def test_restart_pending_drops_to_zero_when_the_start_file_comes_back(env: Env) -> None:
    """Restoring the exact file the config started from (same bytes) clears restart pending."""
    env.reloader.start()
    original = env.path.read_text()
    env.reload("level: info\nserver: {port: 9090}\n")
    assert env.value("selreload_restart_pending") == 1.0
    assert env.reload(original).outcome is sr.Outcome.UNCHANGED
    assert env.value("selreload_restart_pending") == 0.0
    assert env.reloader.status()["restart_pending"] == []


def test_two_reloaders_on_one_registry_do_not_collide(tmp_path: pathlib.Path) -> None:
    """Two Reloaders with different names share one registry, each with its own series."""
    registry = CollectorRegistry()
    a = Env(tmp_path, "alpha", registry)
    b = Env(tmp_path, "beta", registry)
    a.reloader.start()
    b.reloader.start()
    a.reload("level: debug\n")
    a.reload("level: warning\n")
    b.reload("level: loud\n")
    assert (a.count("applied"), b.count("applied")) == (3.0, 1.0)
    assert (a.count("invalid"), b.count("invalid")) == (0.0, 1.0)
    assert a.value("selreload_config_version") == 3.0
    assert b.value("selreload_config_version") == 1.0


def test_default_registry_is_the_global_one(tmp_path: pathlib.Path) -> None:
    """Without `registry=`, the metrics land on prometheus_client's global REGISTRY."""
    name = f"global-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "c.yaml"
    write_atomic(path, "level: info\n")
    sr.Reloader(App, sources=[sr.YamlFile(path, watch=False)], name=name).start()
    assert REGISTRY.get_sample_value("selreload_reloads_total", {"config": name, "outcome": "applied"}) == 1.0


def test_watched_file_edits_move_the_metrics(tmp_path: pathlib.Path) -> None:
    """With the real file watcher, saving a restart-only change raises restart_pending to 1
    and saving the original back drops it to 0, with no reload() call from the test."""
    path = tmp_path / "watched.yaml"
    write_atomic(path, "level: info\n")
    registry = CollectorRegistry()
    reloader = sr.Reloader(App, sources=[sr.YamlFile(path)], registry=registry, name="watched")

    def wait_for(metric: str, want: float, **labels: str) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if registry.get_sample_value(metric, {"config": "watched", **labels}) == want:
                return
            time.sleep(0.01)
        got = registry.get_sample_value(metric, {"config": "watched", **labels})
        raise AssertionError(f"{metric}{labels} stayed {got}, want {want}")

    with reloader:
        write_atomic(path, "level: debug\nserver: {port: 9090}\n")
        wait_for("selreload_restart_pending", 1.0)
        wait_for("selreload_config_version", 2.0)
        write_atomic(path, "level: debug\n")
        wait_for("selreload_restart_pending", 0.0)
        write_atomic(path, "level: loud\n")
        wait_for("selreload_reloads_total", 1.0, outcome="invalid")
    assert registry.get_sample_value("selreload_config_version", {"config": "watched"}) == 2.0


def test_grafana_dashboard_uses_these_metric_names() -> None:
    """docs/grafana-dashboard.json is valid JSON, has a `config` variable, filters every
    query by it, and queries every metric family, under no other selreload name."""
    path = pathlib.Path(__file__).parent.parent / "docs" / "grafana-dashboard.json"
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    assert "config" in [v["name"] for v in dashboard["templating"]["list"]]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_bucket$", "", m) for e in exprs for m in re.findall(r"selreload_[a-z_]+", e)}
    assert used == NAMES
    assert all('config=~"$config"' in e for e in exprs)
    assert any("histogram_quantile(0.99" in e for e in exprs)
    # Imported, Grafana asks for the data source; instances of one service are their own lines.
    assert [i["pluginId"] for i in dashboard["__inputs"]] == ["prometheus"]
    assert all('instance=~"$instance"' in e for e in exprs)
    legends = [t["legendFormat"] for p in dashboard["panels"] for t in p["targets"] if "legendFormat" in t]
    assert legends and all("{{instance}}" in legend for legend in legends)


def test_exposition_has_every_series_from_the_start_and_no_created(env: Env) -> None:
    """Read as Prometheus does (the exposition text): every family has a series before any
    reload fails, `selreload_applier_failures_total` at 0 for each registered applier (so
    `increase()` sees the first failure), and no `_created` series from selreload."""
    broken = Failing("broken")
    env.reloader.on("level", broken, name="broken")
    env.reloader.start()
    broken.on_apply = True
    try:
        text = generate_latest(env.registry).decode()
        samples = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert 'selreload_applier_failures_total{applier="broken",config="svc"} 0.0' in samples
        assert not [s for s in samples if "_created" in s]
        for family in NAMES:
            assert any(s.startswith(family) for s in samples), family
        env.reload("level: debug\n")
        text = generate_latest(env.registry).decode()
        assert 'selreload_applier_failures_total{applier="broken",config="svc"} 1.0' in text.splitlines()
        assert "_created" not in text
    finally:
        env.reloader.stop()


_values = st.one_of(
    st.sampled_from([0.0, -0.0, 0.0005, 0.001, 0.0025, 5.0, 10.0, 10.000001, float("inf"), float("nan")]),
    st.floats(min_value=-1.0, max_value=100.0),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_values, max_size=30))
def test_the_fast_update_paths_write_what_the_public_api_writes(values: list[float]) -> None:
    """`Metrics.observe` goes through prometheus_client's value objects, not its wrappers:
    for any values (bucket bounds exactly, NaN, infinities, negatives) the exposition is
    the public `observe()`/`inc()`/`set()`'s, sample for sample."""
    from prometheus_client import Counter, Gauge, Histogram

    from selreload._metrics import _BUCKETS, _adder, _setter, _timer

    def exposition(fast: bool) -> list[str]:
        registry = CollectorRegistry()
        h = Histogram("h", "h", ["config"], buckets=_BUCKETS, registry=registry).labels(config="c")
        c = Counter("c", "c", ["config"], registry=registry).labels(config="c")
        g = Gauge("g", "g", ["config"], registry=registry).labels(config="c")
        observe, inc, put = (_timer(h), _adder(c), _setter(g)) if fast else (h.observe, c.inc, g.set)
        for v in values:
            observe(v)
            inc(abs(v) if v == v else 1.0)
            put(v)
        return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]

    assert exposition(True) == exposition(False)

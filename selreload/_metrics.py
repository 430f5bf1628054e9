"""Prometheus metrics with the fixed names dashboards rely on (label `config`).

Under prometheus_client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR` set: gunicorn,
`uvicorn --workers`), every worker writes its samples to files there and any worker's
`/metrics` reads them all: counters and the histogram add up across workers, the version
gauge is kept per live worker (a `pid` label: versions count per process, so they do not
add up), the last-success time and restart-pending count take the newest and the
largest, and `selreload_healthy` the smallest (one unhealthy worker makes it 0).
"""

from __future__ import annotations

import bisect
import functools
import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._result import Outcome, ReloadResult

if TYPE_CHECKING:
    # Imported when the first Reloader is built, not with selreload: prometheus_client
    # loads its exposition module, and with it http.server, ssl and email (~70 ms here).
    from prometheus_client import CollectorRegistry

# One set of metric families per registry: two Reloaders in one process share them and
# tell themselves apart by the `config` label instead of colliding on registration.
_FAMILIES: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, Any]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def multiprocess() -> bool:
    """Whether prometheus_client runs in multiprocess mode in this process."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition for `/metrics`: in multiprocess mode, of every worker's files
    (a fresh registry each scrape, as prometheus_client documents), else of `registry`."""
    from prometheus_client import REGISTRY, generate_latest

    if multiprocess() and registry is REGISTRY:
        from prometheus_client import CollectorRegistry
        from prometheus_client import multiprocess as mp

        fresh = CollectorRegistry()
        mp.MultiProcessCollector(fresh)  # type: ignore[no-untyped-call]
        return generate_latest(fresh)
    return generate_latest(registry)


_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@functools.cache
def _kinds() -> tuple[type[Any], type[Any], type[Any]]:
    """Counter, Gauge and Histogram without the `_created` series: dashboards use
    `increase()` and `rate()`, never `_created`, which would double the exposition. Only
    selreload's own families drop it; the application's metrics keep theirs."""
    from prometheus_client import Counter, Gauge, Histogram

    class _Counter(Counter):
        def _child_samples(self) -> Any:
            return tuple(s for s in super()._child_samples() if s.name != "_created")

    class _Histogram(Histogram):
        def _child_samples(self) -> Any:
            return tuple(s for s in super()._child_samples() if s.name != "_created")

    return _Counter, Gauge, _Histogram


def _families(registry: CollectorRegistry) -> dict[str, Any]:
    Counter, Gauge, Histogram = _kinds()

    with _LOCK:
        fam = _FAMILIES.get(registry)
        if fam is None:
            fam = {
                "reloads": Counter(
                    "selreload_reloads", "Reload attempts by outcome.", ["config", "outcome"], registry=registry
                ),
                "duration": Histogram(
                    "selreload_reload_duration_seconds",
                    "Wall time of reload attempts.",
                    ["config"],
                    buckets=_BUCKETS,
                    registry=registry,
                ),
                "version": Gauge(
                    "selreload_config_version",
                    "Live config version.",
                    ["config"],
                    registry=registry,
                    multiprocess_mode="liveall",
                ),
                "last_success": Gauge(
                    "selreload_last_success_timestamp_seconds",
                    "Unix time of the last reload attempt that ended well (applied, unchanged or rejected).",
                    ["config"],
                    registry=registry,
                    multiprocess_mode="livemax",
                ),
                "restart_pending": Gauge(
                    "selreload_restart_pending",
                    "Restart-only leaves whose source value differs from the live one.",
                    ["config"],
                    registry=registry,
                    multiprocess_mode="livemax",
                ),
                "applier_failures": Counter(
                    "selreload_applier_failures",
                    "Applier (and rollback) failures.",
                    ["config", "applier"],
                    registry=registry,
                ),
                "audit_failures": Counter(
                    "selreload_audit_failures",
                    "Audit records that could not be written (disk full, I/O error).",
                    ["config"],
                    registry=registry,
                ),
                "healthy": Gauge(
                    "selreload_healthy",
                    "1 while the Reloader is healthy, 0 when not (a failed rollback, an unwritable "
                    "audit log, a dead watcher): status() says why.",
                    ["config"],
                    registry=registry,
                    multiprocess_mode="livemin",
                ),
            }
            _FAMILIES[registry] = fam
        return fam


class Metrics:
    """The metrics of one Reloader (`name` is the `config` label)."""

    def __init__(self, name: str, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import REGISTRY

        fam = _families(registry if registry is not None else REGISTRY)
        self._reloads = {o: fam["reloads"].labels(config=name, outcome=o.value) for o in Outcome}
        self._duration = fam["duration"].labels(config=name)
        self._version = fam["version"].labels(config=name)
        self._last_success = fam["last_success"].labels(config=name)
        self._restart_pending = fam["restart_pending"].labels(config=name)
        self._applier_failures = fam["applier_failures"]
        self._audit_failures = fam["audit_failures"].labels(config=name)  # a zero series from the start
        self._healthy = fam["healthy"].labels(config=name)
        self._name = name
        self._health: Callable[[], bool] | None = None
        # What `observe` calls after every attempt: the value objects under the metric
        # wrappers, whose checks (observable? negative? most recent?) hold for these
        # children once made. The wrappers' methods cost ~3 us a reload, these ~1 us.
        self._count = {o: _adder(c) for o, c in self._reloads.items()}
        self._time = _timer(self._duration)
        self._set_version = _setter(self._version)
        self._set_restart_pending = _setter(self._restart_pending)
        self._set_last_success = _setter(self._last_success)

    def observe(self, result: ReloadResult, *, restart_pending: int, ts: float) -> None:
        """Count one attempt, time it, and set the version, restart-pending and
        last-success gauges (a rejected reload leaves a good config live: a success)."""
        self._count[result.outcome](1.0)
        self._time(result.duration_s)
        self._set_version(float(result.version))
        self._set_restart_pending(float(restart_pending))
        if result.outcome.ok:
            self._set_last_success(ts)
        if self._health is not None:
            self._healthy.set(1.0 if self._health() else 0.0)

    def applier_registered(self, applier: str) -> None:
        """Start the failure counter of `applier` at 0: `increase()` needs a sample before
        the first failure to see it (a series born at 1 reads as no increase)."""
        self._applier_failures.labels(config=self._name, applier=applier)

    def applier_failed(self, applier: str) -> None:
        """Count one failure of `applier` (its apply or its rollback)."""
        self._applier_failures.labels(config=self._name, applier=applier).inc()

    def watch_health(self, healthy: Callable[[], bool]) -> None:
        """Read `selreload_healthy` from `healthy()` at every scrape (in multiprocess mode,
        where a scrape reads files and calls nothing: after every attempt)."""
        if multiprocess():
            self._health = healthy
            self._healthy.set(1.0)
            return
        self._healthy.set_function(lambda: 1.0 if healthy() else 0.0)

    def audit_failed(self) -> None:
        """Count one audit record that could not be written."""
        self._audit_failures.inc()


def _adder(counter: Any) -> Callable[[float], None]:
    """`counter.inc(amount)` through its value object, where prometheus_client has one."""
    inc = getattr(getattr(counter, "_value", None), "inc", None)
    return inc if callable(inc) else counter.inc  # type: ignore[no-any-return]


def _setter(gauge: Any) -> Callable[[float], None]:
    """`gauge.set(value)` through its value object (not for `mostrecent` gauges, whose
    wrapper adds the time)."""
    set_ = getattr(getattr(gauge, "_value", None), "set", None)
    if callable(set_) and not getattr(gauge, "_is_most_recent", False):
        return set_  # type: ignore[no-any-return]
    return gauge.set  # type: ignore[no-any-return]


def _timer(histogram: Any) -> Callable[[float], None]:
    """`histogram.observe(seconds)` through its value objects: the sum, and the first
    bucket whose bound holds the value (a bisection instead of a loop over the bounds)."""
    total, buckets, bounds = (getattr(histogram, n, None) for n in ("_sum", "_buckets", "_upper_bounds"))
    if not (callable(getattr(total, "inc", None)) and buckets and bounds and len(buckets) == len(bounds)):
        return histogram.observe  # type: ignore[no-any-return]
    add, counts, limits = getattr(total, "inc"), [b.inc for b in buckets], list(bounds)  # noqa: B009

    def observe(seconds: float) -> None:
        add(seconds)
        at = bisect.bisect_left(limits, seconds)
        if at < len(limits) and seconds <= limits[at]:  # NaN falls in no bucket, as there
            counts[at](1.0)

    return observe

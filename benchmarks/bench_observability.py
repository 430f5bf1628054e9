"""Observability benchmark: what metrics + tracing + audit add to one reload.

A 100-leaf config in a real YAML file, alternating between two contents so that every
reload applies: first with all 100 leaves changing (the worst case for the audit record,
~7 KB), then with one leaf changing (the usual case). Modes, interleaved in blocks so
machine noise hits them alike:
  off            no metrics (a no-op stand-in), no tracer provider, no audit
  metrics        a fresh CollectorRegistry
  tracing        an SDK TracerProvider, SimpleSpanProcessor, in-memory exporter
  audit          AuditLog(fsync=False)
  audit+fsync    AuditLog() (fsync on every record, the default)
  all            metrics + tracing + audit without fsync
  all+fsync      metrics + tracing + audit with fsync
Goal: the extra cost of "all" over "off" under 0.5 ms per reload. fsync is a disk round
trip, not CPU: it is shown apart, as measured.

Two clocks: wall time (what a caller waits) and this thread's CPU time (what the work
costs). On a shared 2-core machine wall-time medians move by a millisecond between runs;
CPU time much less, though cache sharing still inflates it. The "inside" columns time
AuditLog.record and Metrics.observe directly in the "all" mode, which differences of
medians cannot resolve finely.
"""

from __future__ import annotations

import argparse
import functools
import os
import pathlib
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import attrs
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._record import MetricsRecorder

LEAVES = 100
GOAL_MS = 0.5
MODES: dict[str, dict[str, bool]] = {
    "off": {},
    "metrics": {"metrics": True},
    "tracing": {"tracing": True},
    "audit": {"audit": True},
    "audit+fsync": {"audit": True, "fsync": True},
    "all": {"metrics": True, "tracing": True, "audit": True},
    "all+fsync": {"metrics": True, "tracing": True, "audit": True, "fsync": True},
}


def make_schema() -> type[Any]:
    fields = {f"f{i}": sr.hot(default=0, type=int) for i in range(LEAVES)}
    section = attrs.make_class("Section", fields, frozen=True, slots=True)
    return attrs.make_class("Root", {"s": sr.field(factory=section, type=section)}, frozen=True, slots=True)


def document(value: int, changing: int) -> str:
    """Leaves f0..f{changing-1} hold `value + i`; the rest stay fixed."""
    return "s:\n" + "".join(f"  f{i}: {value + i if i < changing else i}\n" for i in range(LEAVES))


class _NoMetrics:
    """Stands in for the Reloader's metrics in the modes without them (always on otherwise)."""

    def observe(self, result: Any, *, restart_pending: int, ts: float) -> None:
        pass

    def applier_failed(self, applier: str) -> None:
        pass


def _timed(fn: Callable[..., Any], into: list[float]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        c0 = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            into.append(time.thread_time() - c0)

    return wrapper


class Mode:
    def __init__(self, name: str, root: type[Any], tmp: pathlib.Path, changing: int) -> None:
        on = MODES[name]
        self.name = name
        self.changing = changing
        self.path = tmp / f"{name}-{changing}.yaml"
        self.path.write_text(document(0, changing))
        self.docs = [document(1, changing), document(2, changing)]
        self.exporter = InMemorySpanExporter()
        provider = None
        if on.get("tracing"):
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.audit_path = tmp / f"{name}-{changing}.jsonl"
        audit = sr.AuditLog(self.audit_path, fsync=on.get("fsync", False)) if on.get("audit") else None
        self.reloader = sr.Reloader(
            root,
            sources=[sr.YamlFile(self.path, watch=False)],
            registry=CollectorRegistry(),
            tracer_provider=provider,
            audit=audit,
            name=name,
        )
        self.inside: dict[str, list[float]] = {"audit": [], "metrics": []}
        # The metrics recorder of the Reloader's fan-out: swapped out, or timed.
        recorder = next(r for r in self.reloader._pipeline.record.recorders if isinstance(r, MetricsRecorder))
        if not on.get("metrics"):
            recorder._metrics = _NoMetrics()  # type: ignore[assignment]
        elif name == "all":
            metrics = recorder._metrics
            metrics.observe = _timed(metrics.observe, self.inside["metrics"])  # type: ignore[method-assign]
        if audit is not None and name == "all":
            audit.record = _timed(audit.record, self.inside["audit"])  # type: ignore[method-assign]
        self.reloader.on("s", lambda changes, snapshot: None)
        self.reloader.start()
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.i = 0

    def run(self, n: int) -> None:
        for _ in range(n):
            self.path.write_text(self.docs[self.i % 2])
            self.i += 1
            c0, t0 = time.thread_time(), time.perf_counter()
            result = self.reloader.reload()
            self.wall.append(time.perf_counter() - t0)
            self.cpu.append(time.thread_time() - c0)
            if result.outcome is not sr.Outcome.APPLIED or len(result.applied) != self.changing:
                raise SystemExit(f"{self.name}: expected {self.changing} applied changes, got {result}")
        self.exporter.clear()

    def reset(self) -> None:
        self.wall.clear()
        self.cpu.clear()
        for values in self.inside.values():
            values.clear()


def med(values: list[float]) -> float:
    return statistics.median(values) * 1e3 if values else float("nan")


def scenario(root: type[Any], tmp: pathlib.Path, changing: int, names: list[str], rounds: int, block: int) -> None:
    modes = {name: Mode(name, root, tmp, changing) for name in names}
    for m in modes.values():  # warm-up
        m.run(5)
        m.reset()
    for _ in range(rounds):
        for m in modes.values():
            m.run(block)
    off, all_ = modes["off"], modes["all"]
    records = len(sr.read_audit(all_.audit_path))
    size = os.path.getsize(all_.audit_path) / records
    print(f"\n{changing} of {LEAVES} leaves change per reload; {len(off.wall)} reloads per mode;", end=" ")
    print(f"audit record {size:.0f} B")
    print(f"  {'mode':<12} {'wall mean':>9} {'wall med':>9} {'extra':>7}   {'cpu mean':>8} {'cpu med':>8} {'extra':>7}")
    for m in modes.values():
        wall, cpu = med(m.wall), med(m.cpu)
        print(
            f"  {m.name:<12} {statistics.fmean(m.wall) * 1e3:9.3f} {wall:9.3f} {wall - med(off.wall):7.3f}"
            f"   {statistics.fmean(m.cpu) * 1e3:8.3f} {cpu:8.3f} {cpu - med(off.cpu):7.3f}"
        )
    extra_cpu = med(all_.cpu) - med(off.cpu)
    verdict = "met" if extra_cpu < GOAL_MS else "NOT met"
    print(
        f"  inside 'all' (CPU, median): AuditLog.record {med(all_.inside['audit']):.3f} ms,"
        f" Metrics.observe {med(all_.inside['metrics']):.3f} ms"
    )
    print(
        f"  => metrics + tracing + audit: +{extra_cpu:.3f} ms CPU, +{med(all_.wall) - med(off.wall):.3f} ms wall"
        f" per reload (goal < {GOAL_MS} ms: {verdict});"
        f" with fsync: +{med(modes['all+fsync'].wall) - med(off.wall):.3f} ms wall"
    )
    if "audit+fsync" in modes:
        fsync_wall = med(modes["audit+fsync"].wall) - med(modes["audit"].wall)
        print(f"  fsync alone: ~{fsync_wall:.3f} ms wall (disk round trip), almost no CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=20)
    args = parser.parse_args()
    root = make_schema()
    print(f"reload cost of a {LEAVES}-leaf YAML config with observability on vs off (ms per reload)")
    # Beside this script, not in /tmp: fsync must reach a real disk (a tmpfs makes it free).
    with tempfile.TemporaryDirectory(dir=pathlib.Path(__file__).parent) as d:
        tmp = pathlib.Path(d)
        scenario(root, tmp, LEAVES, list(MODES), args.rounds, args.block)
        scenario(root, tmp, 1, ["off", "all", "all+fsync"], args.rounds, args.block)


if __name__ == "__main__":
    main()

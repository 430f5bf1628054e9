"""Observability benchmark: what metrics + tracing + audit, and the log line, add to a reload.

How it times: one Reloader per mode, each over its own JSON file alternating between two
contents so that every reload applies. Each round runs one reload in every mode, in a
fresh random order, so machine noise hits them alike; a figure is the
minimum over the rounds (noise only ever adds time), GC left on. An extra cost is
`min(mode) - min(bare)`, both from the same run. Two clocks: wall time (what a caller
waits) and this thread's CPU time (what the work costs).

1. metrics + spans + audit, per reload, for 1 change and for 1,000 changes of a
   1,000-leaf config, beside the bare reload:
     bare      no metrics (a no-op stand-in), no tracer provider, no audit, no log line
     metrics   a fresh CollectorRegistry
     tracing   an SDK TracerProvider, SimpleSpanProcessor, in-memory exporter
     audit     AuditLog(fsync=False): fsync is a disk round trip, not CPU (--fsync adds it)
     all       metrics + tracing + audit
   Goal: "all" adds under 0.5 ms to a 1-change reload.
2. The log line of a 10,000-change reload: the `selreload` logger at WARNING (the INFO
   line is off) and at INFO (a handler writing to memory), beside a reload whose fan-out
   has no log recorder at all (the floor), on one Reloader (the same objects in the same
   memory: separate Reloaders differed by +-4 ms CPU per reload, either way, run to
   run). Goal: off == floor within noise. A whole
   reload (~55 ms CPU) moves by +-2 ms between runs, so the log recorder is also
   timed inside those reloads, and alone on the last result beside a recorder that does
   nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import pathlib
import random
import tempfile
import time
from collections.abc import Sequence
from typing import Any, Protocol

import attrs
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._record import LogRecorder, MetricsRecorder

GOAL_MS = 0.5
PER_SECTION = 100
OBSERVABILITY: dict[str, dict[str, bool]] = {
    "bare": {},
    "metrics": {"metrics": True},
    "tracing": {"tracing": True},
    "audit": {"audit": True},
    "all": {"metrics": True, "tracing": True, "audit": True},
}


def make_schema(leaves: int) -> type[Any]:
    sections = {}
    for s in range(leaves // PER_SECTION):
        fields = {f"f{i}": sr.hot(default=0, type=int) for i in range(PER_SECTION)}
        cls = attrs.make_class(f"S{s}", fields, frozen=True, slots=True)
        sections[f"s{s}"] = sr.field(factory=cls, type=cls)
    return attrs.make_class("Root", sections, frozen=True, slots=True)


def document(leaves: int, value: int, changing: int) -> str:
    """The first `changing` leaves hold `value + n`; the rest stay fixed."""
    doc: dict[str, dict[str, int]] = {}
    n = 0
    for s in range(leaves // PER_SECTION):
        section = doc[f"s{s}"] = {}
        for i in range(PER_SECTION):
            section[f"f{i}"] = value + n if n < changing else n
            n += 1
    return json.dumps(doc)


class _NoMetrics:
    """Stands in for the Reloader's metrics in the modes without them (always on otherwise)."""

    def observe(self, result: Any, *, restart_pending: int, ts: float) -> None:
        pass

    def applier_failed(self, applier: str) -> None:
        pass


class Mode:
    """One Reloader set up for one mode, and its timings."""

    def __init__(
        self, name: str, on: dict[str, Any], root: type[Any], tmp: pathlib.Path, leaves: int, changing: int
    ) -> None:
        self.name = name
        self.changing = changing
        self.path = tmp / f"{name}-{leaves}-{changing}.json"
        self.path.write_text(document(leaves, 0, changing))
        self.docs = [document(leaves, 1, changing), document(leaves, 2, changing)]
        self.exporter = InMemorySpanExporter()
        provider = None
        if on.get("tracing"):
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        audit = None
        if on.get("audit"):
            audit = sr.AuditLog(tmp / f"{name}-{leaves}-{changing}.jsonl", fsync=on.get("fsync", False))
        self.reloader = sr.Reloader(
            root,
            sources=[sr.JsonFile(self.path, watch=False)],
            registry=CollectorRegistry(),
            tracer_provider=provider,
            audit=audit,
            name=f"{name}-{changing}",
        )
        recorders = self.reloader._pipeline.record.recorders
        metrics = next(r for r in recorders if isinstance(r, MetricsRecorder))
        if not on.get("metrics"):
            metrics._metrics = _NoMetrics()  # type: ignore[assignment]
        # The log line: its own scenario. Elsewhere it is left out, like the other outputs.
        self.level: int | None = on.get("log")
        if self.level is None:
            recorders[:] = [r for r in recorders if not isinstance(r, LogRecorder)]
        self.reloader.on("*", lambda changes, snapshot: None)
        self.reloader.start()
        self.all_recorders: list[Any] = []
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.i = 0

    def reload(self) -> None:
        self.path.write_text(self.docs[self.i % 2])
        self.i += 1
        logger = logging.getLogger("selreload")
        if self.level is not None:
            logger.setLevel(self.level)
        c0, t0 = time.thread_time(), time.perf_counter()
        result = self.reloader.reload()
        self.wall.append(time.perf_counter() - t0)
        self.cpu.append(time.thread_time() - c0)
        logger.setLevel(logging.NOTSET)
        if result.outcome is not sr.Outcome.APPLIED or len(result.applied) != self.changing:
            raise SystemExit(f"{self.name}: expected {self.changing} applied changes, got {result}")
        self.exporter.clear()

    def best(self) -> tuple[float, float]:
        """(wall, cpu) minimum in ms."""
        return min(self.wall) * 1e3, min(self.cpu) * 1e3


class Timed(Protocol):
    """A mode or setting whose reloads are timed: its name, timings and minimums."""

    name: str
    wall: list[float]
    cpu: list[float]

    def reload(self) -> None: ...

    def best(self) -> tuple[float, float]: ...


def interleave(modes: Sequence[Timed], rounds: int, warmup: int = 3) -> None:
    for _ in range(warmup):
        for m in modes:
            m.reload()
    for m in modes:
        m.wall.clear()
        m.cpu.clear()
    # A fresh random order each round, not a rotation: a rotation keeps the cyclic order
    # (each mode after the same one), and the 10,000-change scenario then showed a steady
    # +2.3 ms CPU on WARNING and -1.6 ms on INFO (which does more) in four runs of four;
    # shuffled, the signs change from run to run (noise of +-2 ms on a ~55 ms reload).
    order = list(modes)
    shuffle = random.Random(1).shuffle
    for _ in range(rounds):
        shuffle(order)
        for m in order:
            m.reload()


def table(modes: Sequence[Timed], floor: Timed) -> None:
    fw, fc = floor.best()
    print(f"  {'mode':<10} {'wall min':>9} {'extra':>8}   {'cpu min':>8} {'extra':>8}")
    for m in modes:
        w, c = m.best()
        print(f"  {m.name:<10} {w:9.3f} {w - fw:+8.3f}   {c:8.3f} {c - fc:+8.3f}")


def observability(tmp: pathlib.Path, rounds: int, fsync: bool) -> None:
    leaves = 1_000
    root = make_schema(leaves)
    specs = dict(OBSERVABILITY)
    if fsync:
        specs["all+fsync"] = {"metrics": True, "tracing": True, "audit": True, "fsync": True}
    for changing in (1, 1_000):
        modes = [Mode(name, on, root, tmp, leaves, changing) for name, on in specs.items()]
        interleave(modes, rounds)
        print(f"\n{changing:,} of {leaves:,} leaves change per reload;", end=" ")
        print(f"ms per reload, min of {rounds} interleaved rounds")
        bare, all_ = modes[0], modes[[m.name for m in modes].index("all")]
        table(modes, bare)
        extra_w, extra_c = all_.best()[0] - bare.best()[0], all_.best()[1] - bare.best()[1]
        line = f"  => metrics + spans + audit: +{extra_c:.3f} ms CPU, +{extra_w:.3f} ms wall per reload"
        if changing == 1:
            line += f" (goal < {GOAL_MS} ms: {'met' if extra_c < GOAL_MS else 'NOT met'})"
        print(line)
        for m in modes:
            m.reloader.stop()


class _TimedRecorder:
    """A recorder timing the one it wraps (CPU time of this thread)."""

    def __init__(self, inner: Any, into: list[float]) -> None:
        self.inner, self.into = inner, into

    def record(self, result: Any, live: Any) -> None:
        c0 = time.thread_time()
        self.inner.record(result, live)
        self.into.append(time.thread_time() - c0)


class _LogSetting:
    """One setting of the log scenario, on a Reloader shared by all three: the same
    objects in the same memory, so only the log recorder and the level differ."""

    def __init__(self, name: str, mode: Mode, level: int, recorder: bool) -> None:
        self.name, self.mode, self.level, self.recorder = name, mode, level, recorder
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.inside: list[float] = []  # the log recorder's own time in each reload

    def reload(self) -> None:
        recorders = self.mode.reloader._pipeline.record.recorders
        log = next(r for r in self.mode.all_recorders if isinstance(r, LogRecorder))
        timed = _TimedRecorder(log, self.inside)
        recorders[:] = [timed if r is log else r for r in self.mode.all_recorders if self.recorder or r is not log]
        self.mode.level = self.level
        self.mode.reload()
        self.wall.append(self.mode.wall.pop())
        self.cpu.append(self.mode.cpu.pop())

    def best(self) -> tuple[float, float]:
        return min(self.wall) * 1e3, min(self.cpu) * 1e3


def log_levels(tmp: pathlib.Path, rounds: int) -> None:
    leaves = changing = 10_000
    root = make_schema(leaves)
    logger = logging.getLogger("selreload")
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        mode = Mode("log", {"log": logging.INFO}, root, tmp, leaves, changing)
        mode.all_recorders = list(mode.reloader._pipeline.record.recorders)
        settings = [
            _LogSetting("floor", mode, logging.WARNING, recorder=False),
            _LogSetting("WARNING", mode, logging.WARNING, recorder=True),
            _LogSetting("INFO", mode, logging.INFO, recorder=True),
        ]
        interleave(settings, rounds)
        info_lines = len(sink.getvalue())
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    print(f"\nthe log line of a {changing:,}-change reload (one Reloader, settings interleaved);", end=" ")
    print(f"ms per reload, min of {rounds} rounds")
    floor, warning, info = settings
    table(settings, floor)
    off = warning.best()[1] - floor.best()[1]
    on = info.best()[1] - floor.best()[1]
    per_line = info_lines // (len(info.wall) + 3)
    print(
        f"  => INFO off (logger at WARNING): {off:+.3f} ms CPU vs no log recorder at all;"
        f" INFO on: {on:+.3f} ms CPU ({per_line:,} B logged per reload)"
    )
    for setting in (warning, info):
        inside = sorted(setting.inside)
        print(
            f"  inside those reloads, the log recorder itself at {setting.name}: min {inside[0] * 1e6:.1f} us,"
            f" median {inside[len(inside) // 2] * 1e6:.1f} us, max {inside[-1] * 1e6:.1f} us"
        )
    mode.reloader._pipeline.record.recorders[:] = mode.all_recorders  # as built, for the direct timing
    direct(mode, rounds * 4)
    mode.reloader.stop()


def direct(mode: Mode, rounds: int, number: int = 200) -> None:
    """The log recorder alone on the last 10,000-change result, logger at WARNING and at
    INFO, beside a recorder that does nothing (the floor): interleaved, min per call."""
    recorder = next(r for r in mode.reloader._pipeline.record.recorders if isinstance(r, LogRecorder))
    live = mode.reloader._pipeline.live
    result = live.last
    assert result is not None and len(result.applied) == mode.changing

    class Nothing:
        def record(self, result: Any, live: Any) -> None:
            pass

    logger = logging.getLogger("selreload")
    handler = logging.StreamHandler(io.StringIO())
    propagate, logger.propagate = logger.propagate, False
    logger.addHandler(handler)
    cases: list[tuple[str, Any, int]] = [
        ("floor", Nothing(), logging.WARNING),
        ("WARNING", recorder, logging.WARNING),
        ("INFO", recorder, logging.INFO),
    ]
    best = dict.fromkeys((name for name, _, _ in cases), float("inf"))
    try:
        for r in range(rounds):
            k = r % len(cases)
            for name, rec, level in cases[k:] + cases[:k]:
                logger.setLevel(level)
                t0 = time.perf_counter()
                for _ in range(number):
                    rec.record(result, live)
                best[name] = min(best[name], (time.perf_counter() - t0) / number * 1e6)
    finally:
        logger.setLevel(logging.NOTSET)
        logger.removeHandler(handler)
        logger.propagate = propagate
    print(f"  the log recorder alone on that result, us per call, min of {rounds} interleaved rounds x {number}:")
    for name, us in best.items():
        print(f"    {name:<8} {us:9.2f} us  {us - best['floor']:+9.2f} us vs floor (a recorder that does nothing)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds (one reload per mode each)")
    parser.add_argument("--log-rounds", type=int, default=15, help="rounds of the 10,000-change log scenario")
    parser.add_argument("--fsync", action="store_true", help="add an 'all+fsync' mode (a disk round trip)")
    args = parser.parse_args()
    # Beside this script, not in /tmp: fsync must reach a real disk (a tmpfs makes it free).
    with tempfile.TemporaryDirectory(dir=pathlib.Path(__file__).parent) as d:
        tmp = pathlib.Path(d)
        observability(tmp, args.rounds, args.fsync)
        log_levels(tmp, args.log_rounds)


if __name__ == "__main__":
    main()

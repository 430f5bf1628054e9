"""Core benchmark: the cost of reading `reloader.current` and of a reload, by stage.

Reads: `reloader.current.a.b` vs the same read on a plain attrs instance vs a locked
dict walk `get("a.b")` (the Python config-manager design), ns/op and ratios, one run.
Reloads: 100 / 1,000 / 10,000 leaves, split into parse, structure, diff+plan, apply.
Goals: the `current` read within 1.3x of the plain attrs read; reload time linear in leaves.
"""

from __future__ import annotations

import pathlib
import statistics
import tempfile
import threading
import time
import timeit
from typing import Any

import attrs

import selreload as sr
from selreload._layers import merge
from selreload._snapshot import Origins
from selreload._transaction import run as run_transaction


@sr.config
class B:
    b: int = sr.hot(default=1)


@sr.config
class A:
    a: B = sr.field(factory=B)


def bench_reads() -> None:
    tmp = pathlib.Path(tempfile.mkdtemp())
    (tmp / "c.yaml").write_text("a:\n  b: 1\n")
    reloader = sr.Reloader(A, sources=[sr.YamlFile(tmp / "c.yaml", watch=False)])
    reloader.start()
    plain = A()

    class Locked:
        def __init__(self) -> None:
            self._lock = threading.RLock()
            self._data: dict[str, Any] = {"a": {"b": 1}}

        def get(self, key: str) -> Any:
            with self._lock:
                node: Any = self._data
                for part in key.split("."):
                    node = node[part]
                return node

    locked = Locked()
    number = 2_000_000
    cases = {
        "plain attrs  cfg.a.b": ("cfg.a.b", {"cfg": plain}),
        "selreload    reloader.current.a.b": ("r.current.a.b", {"r": reloader}),
        "selreload    pinned() (ContextVar)": ("r.pinned().a.b", {"r": reloader}),
        "locked dict  get('a.b')": ("m.get('a.b')", {"m": locked}),
    }
    best: dict[str, float] = {}
    for label, (stmt, ns) in cases.items():
        runs = timeit.repeat(stmt, globals=ns, number=number, repeat=7)
        best[label] = min(runs) / number * 1e9
    empty = min(timeit.repeat("pass", number=number, repeat=7)) / number * 1e9
    base = best["plain attrs  cfg.a.b"]
    print(f"reads: best of 7 x {number:,} (loop overhead {empty:.1f} ns/op included in every row)")
    print(f"  {'case':40} {'ns/op':>8} {'vs plain':>9} {'net of loop':>12}")
    for label, ns_op in best.items():
        net = (ns_op - empty) / (base - empty)
        print(f"  {label:40} {ns_op:8.1f} {ns_op / base:8.2f}x {net:11.2f}x")
    ratio = best["selreload    reloader.current.a.b"] / base
    print(f"  goal: current read within 1.3x of plain attrs -> {ratio:.2f}x {'OK' if ratio <= 1.3 else 'MISSED'}")
    reloader.stop()


def make_schema(leaves: int) -> type[Any]:
    per = 100
    sections = {}
    for s in range(leaves // per):
        cls = attrs.make_class(
            f"S{s}", {f"f{i}": sr.hot(default=0, type=int) for i in range(per)}, frozen=True, slots=True
        )
        sections[f"s{s}"] = sr.field(factory=cls, type=cls)
    return attrs.make_class("Root", sections, frozen=True, slots=True)


def document(leaves: int, value: int) -> str:
    lines = []
    for s in range(leaves // 100):
        lines.append(f"s{s}:")
        lines.extend(f"  f{i}: {value + i}" for i in range(100))
    return "\n".join(lines) + "\n"


def bench_reloads() -> None:
    print("\nreloads: every leaf changes each time (worst case), median of N reloads, ms")
    print(f"  {'leaves':>7} {'parse':>8} {'structure':>10} {'diff+plan':>10} {'apply':>8} {'total':>8} {'us/leaf':>8}")
    per_leaf = []
    for leaves, n in ((100, 200), (1_000, 40), (10_000, 8)):
        root = make_schema(leaves)
        tmp = pathlib.Path(tempfile.mkdtemp())
        path = tmp / "config.yaml"
        path.write_text(document(leaves, 0))
        source = sr.YamlFile(path, watch=False)
        reloader = sr.Reloader(root, sources=[source], registry=_registry())
        reloader.on("*", lambda changes, snap: None)
        reloader.start()
        stages: dict[str, list[float]] = {k: [] for k in ("parse", "structure", "plan", "apply", "total")}
        docs = [document(leaves, 1), document(leaves, 2)]
        for i in range(n):
            path.write_text(docs[i % 2])
            # The same stages reload() runs, timed one by one ...
            t0 = time.perf_counter()
            layer = source.load()
            t1 = time.perf_counter()
            pipeline = reloader._pipeline
            config, _issues = pipeline.structurer.structure(merge([layer.tree]))
            t2 = time.perf_counter()
            live = pipeline.live
            plan = pipeline.planner(live.snapshot.config, live.flat, config, pipeline.routes)
            t3 = time.perf_counter()
            snap = pipeline.snapshot(plan.effective, 0, Origins(dict))
            run_transaction(plan.batches, snap, live.snapshot)
            t4 = time.perf_counter()
            for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=False):
                stages[k].append(v)
            # ... then the real thing, end to end (with a fresh document so it applies).
            path.write_text(docs[(i + 1) % 2] + f"# {i}\n")
            source._last = None  # force a parse, as for any changed file
            t5 = time.perf_counter()
            result = reloader.reload()
            stages["total"].append(time.perf_counter() - t5)
            assert result.outcome is sr.Outcome.APPLIED, result
        med = {k: statistics.median(v) * 1e3 for k, v in stages.items()}
        per_leaf.append(med["total"] * 1e3 / leaves)
        print(
            f"  {leaves:>7,} {med['parse']:8.2f} {med['structure']:10.2f} {med['plan']:10.2f}"
            f" {med['apply']:8.2f} {med['total']:8.2f} {per_leaf[-1]:8.2f}"
        )
        reloader.stop()
    growth = per_leaf[-1] / per_leaf[0]
    print(f"  cost per leaf at 10,000 vs at 100 leaves: {growth:.2f}x (1.0 = perfectly linear)")


def _registry() -> Any:
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


if __name__ == "__main__":
    bench_reads()
    bench_reloads()

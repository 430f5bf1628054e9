"""Memory and GC: RSS growth over 100,000 reloads, what a snapshot retains, the cost of
history, and garbage-collector pauses inside 10,000-leaf reloads. GC stays on throughout.

Goals (each printed beside its figure and a floor measured in the same run):
- RSS growth over 100,000 reloads of a small config < 1 MiB (floor: the same loop
  writing and reading the file and parsing it with json, no reloader); the same config
  with an anchor (read by ruamel: the fast path declines it) over a tenth as many;
- one 10,000-leaf snapshot retains <= 2x its config's size (tracemalloc; the config's
  size is what a structured config instance alone holds, built from nothing; a snapshot
  after a reload may share unchanged sections with the one before);
- history=10 at 10,000 leaves: the cost beside 10x one config's size;
- no full (generation 2) collection inside a 10,000-leaf reload.

Run: .venv/bin/python benchmarks/bench_memory.py [--reloads N]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import sys
import tempfile
import time
import tracemalloc
from typing import Any

from prometheus_client import CollectorRegistry

import selreload as sr

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from bench_sources import make_schema, make_yaml

MiB = 1024 * 1024


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@sr.config
class Small:
    level: str = sr.hot(default="info")
    ratio: float = sr.hot(default=0.5)
    flags: dict[str, bool] = sr.hot(factory=dict)
    port: int = sr.restart_only(default=8080)


SMALL = "level: {level}\nratio: 0.{n}\nflags:\n  a: true\n  b: false\nport: 8080\n"
# The same config through ruamel (an anchor: the fast path declines it).
ANCHORED = "level: {level}\nratio: 0.{n}\nflags: &f\n  a: true\n  b: false\nport: 8080\n"


def small_text(i: int, template: str = SMALL) -> bytes:
    """Contents of equal length: rewritten in place with one `pwrite`."""
    return template.format(level=("debug", "error")[i % 2], n=i % 10).encode()


def rss_growth(tmp: pathlib.Path, reloads: int, template: str = SMALL, what: str = "") -> None:
    path = tmp / "small.yaml"
    path.write_bytes(small_text(0, template))
    reloader = sr.Reloader(Small, [sr.YamlFile(path, watch=False)], registry=CollectorRegistry())
    reloader.start()
    fd = os.open(path, os.O_WRONLY)

    def reload_loop(n: int, start: int) -> None:
        for i in range(start, start + n):
            os.pwrite(fd, small_text(i + 1, template), 0)
            result = reloader.reload()
            if result.outcome is not sr.Outcome.APPLIED:
                raise RuntimeError(f"expected APPLIED, got {result.outcome}: {result.errors}")

    def floor_loop(n: int) -> None:
        for i in range(n):
            os.pwrite(fd, small_text(i + 1, template), 0)
            json.loads(json.dumps({"level": path.read_bytes().decode()[:12], "ratio": i % 10}))

    warm = min(5_000, reloads // 4)
    reload_loop(warm, 0)  # caches, interned names, allocator arenas
    floor_loop(warm)
    gc.collect()
    t0, r0 = time.perf_counter(), rss()
    reload_loop(reloads, warm)
    gc.collect()
    grown, took = rss() - r0, time.perf_counter() - t0
    f0 = rss()
    floor_loop(reloads)
    gc.collect()
    floor = rss() - f0
    os.close(fd)
    goal = "meets" if grown < MiB else "MISSES"
    print(f"RSS growth over {reloads:,} reloads of a 6-line config{what}: {grown / MiB:+.2f} MiB in {took:.1f} s")
    print(f"  floor (write + read + json, no reloader): {floor / MiB:+.2f} MiB; goal < 1 MiB: {goal}")


def traced(fn: Any) -> tuple[int, Any]:
    """Bytes still allocated after `fn()` (whose result is kept), after a full collection."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    kept = fn()
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before, kept


def snapshots(tmp: pathlib.Path, leaves: int) -> None:
    schema = make_schema(leaves)
    texts = [make_yaml(leaves, v) for v in range(14)]
    path = tmp / "big.yaml"
    path.write_text(texts[0])
    tracemalloc.start()
    # The config's own size: a structured instance alone (the floor of any snapshot).
    from selreload._schema import Schema
    from selreload._structure import Structurer
    from selreload._yaml import parse_yaml

    # Parsed inside the traced call: the config's strings are counted, the tree is freed. A
    # fresh structurer each time (an incremental one shares what it built before), and the
    # second try (the first also pays for caches filled once per process).
    sizes = [traced(lambda: Structurer(Schema(schema)).structure(parse_yaml("x", texts[1]))[0])[0] for _ in range(2)]
    config_size = sizes[1]
    results = {}
    for history in (1, 10):
        reloader = sr.Reloader(schema, [sr.YamlFile(path, watch=False)], registry=CollectorRegistry(), history=history)
        reloader.start()
        path.write_text(texts[1])
        reloader.reload()
        # One reload that adds a snapshot to a history with room for it: what it retains.
        base = tracemalloc.get_traced_memory()[0]
        path.write_text(texts[2])
        one, _ = traced(lambda r=reloader: r.reload())
        gc.collect()
        for v in range(3, 13):
            path.write_text(texts[v])
            reloader.reload()
        gc.collect()
        results[history] = (one, tracemalloc.get_traced_memory()[0] - base)
        reloader.stop()
        del reloader
        gc.collect()
    tracemalloc.stop()
    one = results[10][0]
    hist_cost = results[10][1] - results[1][1]
    ratio = one / config_size
    print(f"\n{leaves:,}-leaf config: {len(texts[0]):,} bytes of YAML; structured config {config_size / MiB:.2f} MiB")
    print(
        f"  one more snapshot in history retains {one / MiB:.2f} MiB = {ratio:.2f}x the config"
        f" (goal <= 2x: {'meets' if ratio <= 2 else 'MISSES'})"
    )
    print(
        f"  history=10 vs history=1 after 11 reloads: +{hist_cost / MiB:.2f} MiB"
        f" (floor: 9 more configs = {9 * config_size / MiB:.2f} MiB; {hist_cost / (9 * config_size):.2f}x)"
    )


def gc_pauses(tmp: pathlib.Path, leaves: int, reloads: int) -> None:
    schema = make_schema(leaves)
    texts = [make_yaml(leaves, 0), make_yaml(leaves, 1)]
    path = tmp / "gc.yaml"
    path.write_text(texts[0])
    reloader = sr.Reloader(schema, [sr.YamlFile(path, watch=False)], registry=CollectorRegistry())
    reloader.start()
    inside = [False]
    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif inside[0]:
            pauses.append((info["generation"], time.perf_counter() - started[0]))

    # Garbage between reloads, as a service makes it: containers that survive a while.
    junk: list[Any] = []
    gc.callbacks.append(watch)
    try:
        times = []
        for i in range(reloads):
            junk.append([{"k": j} for j in range(2_000)])
            if len(junk) > 20:
                junk.pop(0)
            path.write_text(texts[(i + 1) % 2])
            inside[0] = True
            t0 = time.perf_counter()
            reloader.reload()
            times.append(time.perf_counter() - t0)
            inside[0] = False
    finally:
        gc.callbacks.remove(watch)
    reloader.stop()
    full = [p for g, p in pauses if g == 2]
    young = [p for g, p in pauses if g < 2]
    print(f"\nGC inside {reloads} reloads of {leaves:,} leaves (GC on, thresholds {gc.get_threshold()}):")
    print(
        f"  full (gen 2) collections: {len(full)}, longest {max(full, default=0) * 1e3:.1f} ms"
        f" (goal: none: {'meets' if not full else 'MISSES'})"
    )
    print(
        f"  young collections: {len(young)}, total {sum(young) * 1e3:.1f} ms,"
        f" longest {max(young, default=0) * 1e3:.2f} ms;"
        f" reload min {min(times) * 1e3:.1f} ms, max {max(times) * 1e3:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rss_growth(pathlib.Path(tmp), args.reloads)
        rss_growth(pathlib.Path(tmp), args.reloads // 10, ANCHORED, " (ruamel path, an anchor)")
        snapshots(pathlib.Path(tmp), 10_000)
        gc_pauses(pathlib.Path(tmp), 10_000, 30)


if __name__ == "__main__":
    main()

"""Reload time vs bare parse time for 100 / 1,000 / 10,000-leaf YAML files.

Fast path: the tree from ruamel.yaml's safe C loader, round-trip only to place errors.
Slow path: a round-trip parse on every reload too (positions read eagerly).
Every timed reload changes content (two files' contents alternate), so each one runs
the whole pipeline: read, digest, parse, guard, merge, structure, flatten, diff, plan,
commit. Goal: a whole fast reload costs at most 1.25x the safe C parse of the file.
Times are the best of N runs (as `timeit` reports): the machine is shared, and the
minimum is the figure least disturbed by other processes.

Run: .venv/bin/python benchmarks/bench_sources.py [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pathlib
import pstats
import sys
import tempfile
import time
import types
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry
from ruamel.yaml import YAML

import selreload as sr
from selreload._diff import Digester, Flattener, diff
from selreload._guard import check_tree
from selreload._layers import merge
from selreload._schema import Schema
from selreload._structure import Structurer
from selreload.sources._file import yaml_positions

FIELDS = 10  # leaves per section
GOAL = 1.25


def make_schema(leaves: int) -> type[Any]:
    """A root class of `leaves / 10` sections of 10 hot leaves (ints, strings, bools)."""
    sections = leaves // FIELDS
    lines = ["import selreload as sr", "@sr.config", "class Section:"]
    for i in range(FIELDS):
        tp, default = [("int", "0"), ("str", "''"), ("bool", "False")][i % 3]
        lines.append(f"    f{i}: {tp} = sr.hot(default={default})")
    lines += ["@sr.config", "class Root:"]
    lines += [f"    s{j}: Section = sr.hot(factory=Section)" for j in range(sections)]
    module = types.ModuleType(f"bench_schema_{leaves}")
    sys.modules[module.__name__] = module
    exec("\n".join(lines), module.__dict__)
    return module.Root  # type: ignore[no-any-return]


def make_yaml(leaves: int, variant: int) -> str:
    """The document; `variant` changes every 100th leaf so each reload has changes."""
    out = []
    for j in range(leaves // FIELDS):
        out.append(f"s{j}:")
        for i in range(FIELDS):
            n = j * FIELDS + i
            bump = variant if n % 100 == 0 else 0
            value = [str(n + bump), f"'v{n + bump}'", "true" if (n + bump) % 2 else "false"][i % 3]
            out.append(f"  f{i}: {value}")
    return "\n".join(out) + "\n"


class RoundTripYamlFile(sr.YamlFile):
    """The slow path: positions from a round-trip parse on every reload, eagerly.

    (A round-trip tree cannot be structured as is: its ints are `ScalarInt`, its strings
    `ScalarString`; the tree still comes from the safe parse.)
    """

    def _parse(self, text: str) -> Any:
        yaml_positions(self.name, text)
        return super()._parse(text)


def best_time(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def started(source_cls: type[sr.YamlFile], schema: type[Any], path: pathlib.Path, text: str) -> sr.Reloader[Any]:
    path.write_text(text)
    reloader = sr.Reloader(schema, [source_cls(path, watch=False)], registry=CollectorRegistry())
    reloader.start()
    return reloader


def reload_changed(reloader: sr.Reloader[Any], path: pathlib.Path, text: str) -> float:
    """Write new content (untimed), then time one whole reload of it."""
    path.write_text(text)
    t0 = time.perf_counter()
    result = reloader.reload()
    elapsed = time.perf_counter() - t0
    if result.outcome is not sr.Outcome.APPLIED:
        raise RuntimeError(f"expected APPLIED, got {result.outcome}: {result.errors}")
    return elapsed


def stages(schema: type[Any], text: str, other: str, reps: int) -> dict[str, float]:
    """Best time of each core stage on one document (what a reload adds to the parse)."""
    compiled = Schema(schema)
    structurer, flatten = Structurer(compiled), Flattener(compiled)
    tree = YAML(typ="safe", pure=False).load(text)
    old = flatten(structurer.structure(YAML(typ="safe", pure=False).load(other))[0])
    config = structurer.structure(tree)[0]
    flat = flatten(config)
    steps: dict[str, Callable[[], object]] = {
        "guard (alias/depth walk)": lambda: check_tree(tree, "x"),
        "merge": lambda: merge([tree]),
        # A new structurer each time: one that remembers subtrees would give them back.
        "structure + validate": lambda: Structurer(compiled).structure(tree),
        "flatten": lambda: flatten(config),
        "diff": lambda: diff(old, flat, compiled),
        "digest": lambda: Digester(compiled)(config),  # from scratch: a new digester remembers nothing
    }
    return {name: best_time(fn, reps) for name, fn in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="cProfile the fast reload of the largest file")
    args = parser.parse_args()
    rows = []
    gc.disable()  # as timeit does: a collection landing in one run is noise, not cost
    with tempfile.TemporaryDirectory() as tmp:
        fast_path, slow_path = pathlib.Path(tmp) / "fast.yaml", pathlib.Path(tmp) / "slow.yaml"
        for leaves, reps in ((100, 60), (1_000, 30), (10_000, 10)):
            schema = make_schema(leaves)
            texts = [make_yaml(leaves, 0), make_yaml(leaves, 1)]
            fast_r = started(sr.YamlFile, schema, fast_path, texts[0])
            slow_r = started(RoundTripYamlFile, schema, slow_path, texts[0])
            # Parser objects built once and reused: the bare parse at its fastest.
            safe_yaml, rt_yaml = YAML(typ="safe", pure=False), YAML(typ="rt")
            times: dict[str, list[float]] = {"safe": [], "rt": [], "fast": [], "slow": []}
            # Interleaved, so that load from other processes falls on all four alike.
            for k in range(reps):
                text = texts[(k + 1) % 2]
                times["safe"].append(best_time(lambda t=text, y=safe_yaml: y.load(t), 1))
                times["rt"].append(best_time(lambda t=text, y=rt_yaml: y.load(t), 1))
                times["fast"].append(reload_changed(fast_r, fast_path, text))
                times["slow"].append(reload_changed(slow_r, slow_path, text))
                gc.collect()
            safe, rt, fast, slow = (min(times[k]) for k in ("safe", "rt", "fast", "slow"))
            rows.append((leaves, len(texts[0]), safe, rt, fast, slow))
            if leaves == 10_000:
                breakdown = stages(schema, texts[1], texts[0], reps)
            if args.profile and leaves == 10_000:
                prof = cProfile.Profile()
                for k in range(4):
                    fast_path.write_text(texts[k % 2])
                    prof.enable()
                    fast_r.reload()
                    prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    gc.enable()
    print(
        f"{'leaves':>7} {'bytes':>8} {'parse safe-C':>13} {'parse rt':>10} {'reload fast':>12} {'reload slow':>12}"
        f" {'fast/parse':>11} {'slow/parse':>11}"
    )
    for leaves, size, safe, rt, fast, slow in rows:
        print(
            f"{leaves:>7,} {size:>8,} {safe * 1e3:>10.2f} ms {rt * 1e3:>7.2f} ms {fast * 1e3:>9.2f} ms"
            f" {slow * 1e3:>9.2f} ms {fast / safe:>10.2f}x {slow / safe:>10.2f}x"
        )
    largest = rows[-1]
    print(f"\nwhere a 10,000-leaf reload spends its time besides the parse ({largest[2] * 1e3:.1f} ms):")
    for name, t in breakdown.items():
        print(f"  {name:<26} {t * 1e3:>7.2f} ms  ({t / largest[2]:>5.1%} of the parse)")
    worst = max(fast / safe for _, _, safe, _, fast, _ in rows)
    verdict = "meets" if worst <= GOAL else "misses"
    print(f"worst whole-reload / fastest-parse: {worst:.2f}x ({verdict} the {GOAL}x goal)")


if __name__ == "__main__":
    main()

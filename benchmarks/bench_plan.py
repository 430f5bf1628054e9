"""Plan benchmark: what selreload adds to the parse, for one changed leaf and for all.

Every figure is printed beside its floor, measured in the same run, interleaved with it
(so load from other processes falls on both alike), as the minimum of several runs, with
the garbage collector left on.

1. One leaf changes in a 1,000 / 10,000-leaf config. Floor: the parse of the same file
   from scratch (`json.loads`; YAML through `YamlFile`'s fast path, without the entries a
   source reuses from its last document). `own` is a whole `reload()` fed the parsed
   tree by a source of the user's, whose trees are compared value by value (merge,
   structure + validate, plan, digest, commit, record): what selreload adds on top of
   the parse; `file` is a whole `reload()` from the file (read,
   checks, the source's parse included: a YAML or JSON source parses again only the
   entries whose text changed). Goals: parse + own <= 2x parse, and file <= 2x parse.
2. Every leaf changes: own work per leaf vs the parse per leaf (msgspec when installed,
   `json.loads`, `tomllib`). Goal: own work under 0.5 us per leaf.
3. Routing 1,000 changes to 1 applier and to 1,000 (exact, glob). Goal: 1,000 appliers
   within 1.5x of one applier covering the same changes.
4. A reload whose change goes to 1, 5 or 20 appliers, with the default deadline (calls
   on a worker thread) beside the same reload with the appliers inline
   (`applier_timeout=None`, no thread handoff): what the handoffs cost. A transaction's
   calls share one handoff, so its cost does not grow with the number of appliers.

Run: PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_plan.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys
import tempfile
import time
import tomllib
import types
from collections.abc import Callable
from typing import Any

import attrs
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._change import Change
from selreload._routes import Routes
from selreload._typing import Layer
from selreload._yaml import parse_yaml

try:  # the fastest JSON parser, as the floor of "what any library must pay"
    import msgspec
except ImportError:  # pragma: no cover - optional
    msgspec = None

GROUP = 10  # leaves per group; 10 groups per section


def make_schema(leaves: int) -> type[Any]:
    """`leaves / 100` sections of 10 groups of 10 hot leaves (int, str, bool, float)."""
    lines = ["import selreload as sr", "@sr.config", "class Group:"]
    kinds = [("int", "0"), ("str", "''"), ("bool", "False"), ("float", "0.0")]
    for i in range(GROUP):
        tp, default = kinds[i % 4]
        lines.append(f"    f{i}: {tp} = sr.hot(default={default})")
    lines += ["@sr.config", "class Section:"]
    lines += [f"    g{k}: Group = sr.field(factory=Group)" for k in range(10)]
    lines += ["@sr.config", "class Root:"]
    lines += [f"    s{j}: Section = sr.field(factory=Section)" for j in range(leaves // 100)]
    module = types.ModuleType(f"bench_plan_schema_{leaves}")
    sys.modules[module.__name__] = module
    exec("\n".join(lines), module.__dict__)
    return module.Root  # type: ignore[no-any-return]


def make_tree(leaves: int, variant: int, *, every: bool) -> dict[str, Any]:
    """The document as a tree; `variant` changes one leaf (or, with `every`, all)."""
    out: dict[str, Any] = {}
    for j in range(leaves // 100):
        section = out[f"s{j}"] = {}
        for k in range(10):
            group = section[f"g{k}"] = {}
            for i in range(GROUP):
                n = (j * 10 + k) * GROUP + i
                bump = variant if every or n == leaves // 2 else 0
                group[f"f{i}"] = [n + bump, f"v{n + bump}", (n + bump) % 2 == 1, (n + bump) / 4][i % 4]
    return out


def to_yaml(tree: dict[str, Any]) -> str:
    lines = []
    for s, section in tree.items():
        lines.append(f"{s}:")
        for g, group in section.items():
            lines.append(f"  {g}:")
            lines.extend(f"    {k}: {json.dumps(v)}" for k, v in group.items())
    return "\n".join(lines) + "\n"


def to_toml(tree: dict[str, Any]) -> str:
    lines = []
    for s, section in tree.items():
        for g, group in section.items():
            lines.append(f"[{s}.{g}]")
            lines.extend(f"{k} = {json.dumps(v)}" for k, v in group.items())
    return "\n".join(lines) + "\n"


class Preparsed:
    """A source handing over a tree parsed beforehand: reload() minus the parse."""

    name = "preparsed"

    def __init__(self, tree: dict[str, Any]) -> None:
        self.layer = Layer(self.name, tree, "0")

    def load(self) -> Layer:
        return self.layer

    def watch(self, notify: Any) -> None:
        return None


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def applied(reloader: sr.Reloader[Any]) -> None:
    result = reloader.reload()
    if result.outcome is not sr.Outcome.APPLIED:
        raise RuntimeError(f"expected APPLIED, got {result.outcome}: {result.errors}")


def reloader_for(schema: type[Any], sources: list[Any], **kwargs: Any) -> sr.Reloader[Any]:
    reloader = sr.Reloader(schema, sources, registry=CollectorRegistry(), **kwargs)
    reloader.start()
    return reloader


def one_leaf(reps: int) -> None:
    print("1. one leaf changes: parse (floor) vs selreload's own work, best of", reps, "ms")
    print(
        f"  {'format':6} {'leaves':>7} {'parse':>8} {'own':>8} {'own/parse':>10} {'file':>8} {'file/parse':>11}  goal"
    )
    for fmt in ("json", "yaml"):
        for leaves in (1_000, 10_000):
            schema = make_schema(leaves)
            trees = [make_tree(leaves, v, every=False) for v in (0, 1)]
            texts = [json.dumps(t) if fmt == "json" else to_yaml(t) for t in trees]
            with tempfile.TemporaryDirectory() as tmp:
                path = pathlib.Path(tmp) / f"config.{fmt}"
                path.write_text(texts[0])
                source: Any = sr.JsonFile(path, watch=False) if fmt == "json" else sr.YamlFile(path, watch=False)
                # The floor is a parse from scratch: not the source's own, which reuses the
                # top-level entries of its last document.
                parse: Callable[[str], Any] = json.loads if fmt == "json" else functools.partial(parse_yaml, "x")
                file_r = reloader_for(schema, [source])
                pre = Preparsed(parse(texts[0]))
                pre_r = reloader_for(schema, [pre])
                times: dict[str, list[float]] = {"parse": [], "own": [], "file": []}
                for k in range(reps):
                    text = texts[(k + 1) % 2]
                    times["parse"].append(timed(functools.partial(parse, text)))
                    path.write_text(text)
                    times["file"].append(timed(functools.partial(applied, file_r)))
                    pre.layer = Layer(pre.name, parse(text), str(k + 1))
                    times["own"].append(timed(functools.partial(applied, pre_r)))
                best = {k: min(v) * 1e3 for k, v in times.items()}
                ratio = (best["parse"] + best["own"]) / best["parse"]
                own, parsed, file = best["own"], best["parse"], best["file"]
                print(
                    f"  {fmt:6} {leaves:>7,} {parsed:8.3f} {own:8.3f} {own / parsed:9.2f}x"
                    f" {file:8.3f} {file / parsed:10.2f}x  parse+own {ratio:.2f}x {_ok(ratio <= 2)},"
                    f" file {file / parsed:.2f}x {_ok(file <= 2 * parsed)}"
                )


def _ok(met: bool) -> str:
    return "OK" if met else "MISSED"


def every_leaf(reps: int) -> None:
    print("\n2. every leaf changes: selreload's own work per leaf vs the parse per leaf, best of", reps, "us/leaf")
    parsers: dict[str, Callable[[str], Any]] = {"json.loads": json.loads}
    if msgspec is not None:
        parsers["msgspec"] = msgspec.json.decode
    print(
        f"  {'format':6} {'leaves':>7} "
        + " ".join(f"{p:>11}" for p in parsers)
        + f" {'own':>8} {'py floor':>9}  goal (< 0.5)"
    )
    for fmt in ("json", "toml"):
        for leaves in (1_000, 10_000):
            schema = make_schema(leaves)
            trees = [make_tree(leaves, v, every=True) for v in (0, 1)]
            texts = [json.dumps(t) if fmt == "json" else to_toml(t) for t in trees]
            floors = parsers if fmt == "json" else {"tomllib": tomllib.loads}
            pre = Preparsed(trees[0])
            pre_r = reloader_for(schema, [pre])
            times: dict[str, list[float]] = {name: [] for name in (*floors, "own", "py floor")}
            load = json.loads if fmt == "json" else tomllib.loads
            for k in range(reps):
                text = texts[(k + 1) % 2]
                for name, fn in floors.items():
                    times[name].append(timed(functools.partial(fn, text)))
                new_tree = load(text)
                pre.layer = Layer(pre.name, new_tree, str(k + 1))
                times["own"].append(timed(functools.partial(applied, pre_r)))
                old_flat = _flat(load(texts[k % 2]))
                times["py floor"].append(timed(functools.partial(_least_diff, old_flat, new_tree)))
            per = {k: min(v) * 1e6 / leaves for k, v in times.items()}
            cells = " ".join(f"{per[n]:11.3f}" for n in floors)
            if fmt == "toml":
                cells = f"{'tomllib':>11} {per['tomllib']:7.3f}".rjust(11 * len(parsers) + len(parsers) - 1)
            verdict = "OK" if per["own"] < 0.5 else f"MISSED by {per['own'] / 0.5:.1f}x"
            print(f"  {fmt:6} {leaves:>7,} {cells} {per['own']:8.3f} {per['py floor']:9.3f}  {verdict}")
    print(
        "  py floor: the least any Python library does per changed leaf to report it (flatten the"
        " new tree, compare each leaf, one frozen object per change), with no validation, digest"
        " or routing: where it is near 0.5 us, the goal is out of reach for Python code"
    )


@attrs.frozen
class _LeastChange:
    path: str
    old: Any
    new: Any


def _flat(tree: dict[str, Any], prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {} if out is None else out
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        if type(value) is dict:
            _flat(value, path, out)
        else:
            out[path] = value
    return out


def _least_diff(old: dict[str, Any], tree: dict[str, Any]) -> list[_LeastChange]:
    get = old.get
    return [_LeastChange(p, get(p), v) for p, v in _flat(tree).items() if get(p) != v]


def routes(reps: int) -> None:
    print("\n3. routing 1,000 changes (one leaf in each of 1,000 groups), best of", reps, "ms")
    groups = [f"s{j}.g{k}" for j in range(100) for k in range(10)]
    changes = [Change(f"{g}.f0", 0, 1) for g in groups]
    cases: dict[str, list[str]] = {
        "exact x1 (s0.g0)": ["s0.g0"],
        "exact x1000 (s{j}.g{k})": groups,
        "glob x1 (*)": ["*"],
        "glob x1 (s0.g0.*)": ["s0.g0.*"],
        "glob x1000 (s{j}.g{k}.*)": [g + ".*" for g in groups],
        "glob x1000 (s{j}.g{k}.f?)": [g + ".f?" for g in groups],
        "mixed x1000 (half, half)": [g if i % 2 else g + ".*" for i, g in enumerate(groups)],
    }

    def build(patterns: list[str]) -> Routes:
        r = Routes()
        for i, p in enumerate(patterns):
            r.add(p, object(), f"a{i}")
        return r

    # cold: the first routing of these paths by a new `Routes` (the indexes alone);
    # warm: the same paths again (what a service that changes the same leaves sees).
    times: dict[tuple[str, str], list[float]] = {(n, t): [] for n in cases for t in ("cold", "warm")}
    for _ in range(reps):
        for name, patterns in cases.items():
            r = build(patterns)
            times[name, "cold"].append(timed(functools.partial(r.route, changes)))
            times[name, "warm"].append(timed(functools.partial(r.route, changes)))
    best = {k: min(v) * 1e3 for k, v in times.items()}
    print(f"  {'appliers':28} {'cold ms':>8} {'vs glob * x1':>13} {'warm ms':>8} {'vs glob * x1':>13}")
    for name in cases:
        cold, warm = best[name, "cold"], best[name, "warm"]
        print(
            f"  {name:28} {cold:8.3f} {cold / best['glob x1 (*)', 'cold']:12.2f}x"
            f" {warm:8.3f} {warm / best['glob x1 (*)', 'warm']:12.2f}x"
        )
    for temp in ("cold", "warm"):
        floor = best["glob x1 (*)", temp]  # one applier that gets all 1,000 changes
        worst_name = max((n for n in cases if "x1000" in n), key=lambda n: best[n, temp])
        worst = best[worst_name, temp]
        verdict = "OK" if worst <= 1.5 * floor else "MISSED"
        print(
            f"  goal ({temp}): every x1000 case within 1.5x of one applier taking all 1,000 changes"
            f" -> worst {worst / floor:.2f}x ({worst_name}) {verdict}"
        )


def handoffs(reps: int) -> None:
    print("\n4. a reload whose change goes to k appliers: default deadline vs inline, best of", reps, "us")
    width = 20
    lines = ["import selreload as sr", "@sr.config", "class Flat:"]
    lines += [f"    f{i}: int = sr.hot(default=0)" for i in range(width)]
    module = types.ModuleType("bench_plan_handoffs")
    sys.modules[module.__name__] = module
    exec("\n".join(lines), module.__dict__)

    def made(k: int, timeout: float | None) -> tuple[Preparsed, sr.Reloader[Any]]:
        pre = Preparsed({f"f{i}": 0 for i in range(width)})
        reloader = sr.Reloader(module.Flat, [pre], registry=CollectorRegistry(), applier_timeout=timeout)
        for i in range(k):
            reloader.on(f"f{i}", lambda changes, snapshot: None, name=f"a{i}")
        reloader.start()
        return pre, reloader

    cases = {(k, t): made(k, t) for k in (1, 5, 20) for t in (5.0, None)}
    times: dict[tuple[int, float | None], list[float]] = {c: [] for c in cases}
    value = 0
    for _ in range(reps):
        for case, (pre, reloader) in cases.items():
            value += 1
            pre.layer = Layer(pre.name, {f"f{i}": value if i < case[0] else 0 for i in range(width)}, str(value))
            times[case].append(timed(functools.partial(applied, reloader)))
    best = {c: min(v) * 1e6 for c, v in times.items()}
    print(f"  {'appliers':>8} {'deadline':>9} {'inline':>8} {'ratio':>7} {'handoff':>8}")
    for k in (1, 5, 20):
        deadline, inline = best[k, 5.0], best[k, None]
        print(f"  {k:>8} {deadline:9.1f} {inline:8.1f} {deadline / inline:6.2f}x {deadline - inline:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    reps = 5 if args.quick else 25
    one_leaf(reps)
    every_leaf(reps)
    routes(reps)
    handoffs(reps * 8)


if __name__ == "__main__":
    main()

"""Core benchmark: the cost of reading `reloader.current`, of a pin, and of a reload, by stage.

Reads and pins: every case is timed beside its floor, interleaved round-robin (each
round times every case once, in a rotated order, so machine noise hits them alike),
many rounds, the minimum per case (noise only ever adds time), GC left on:
  reads   `reloader.current.a.b` vs a plain attrs instance `cfg.a.b` and a slotted holder
          `h.current.a.b`; `pinned()` vs a method doing the same ContextVar read
          (outside and inside a pin); a locked dict walk `get("a.b")` for reference.
  pins    `with reloader.pin():` vs a bare `cv.set()`/`cv.reset()`; the WSGI and ASGI
          `PinMiddleware` per request vs a no-op middleware around the same app.
Reloads: 100 / 1,000 / 10,000 leaves, split into parse, structure, diff+plan, apply.
Goals: the `current` read within 1.3x of the plain attrs read; `pin()` within 3x of the
ContextVar floor; reload time linear in leaves.
"""

from __future__ import annotations

import argparse
import contextvars
import gc
import pathlib
import statistics
import tempfile
import threading
import time
import timeit
from collections.abc import Callable, Iterable
from typing import Any

import attrs

import selreload as sr
import selreload.asgi
import selreload.wsgi
from selreload._layers import merge
from selreload._snapshot import Origins
from selreload._transaction import run as run_transaction


@sr.config
class B:
    b: int = sr.hot(default=1)


@sr.config
class A:
    a: B = sr.field(factory=B)


def interleaved(cases: dict[str, tuple[str, dict[str, Any]]], *, number: int, rounds: int) -> dict[str, float]:
    """ns/op of each `(stmt, globals)` case: the minimum over `rounds` rounds of `number`
    runs, the cases taking turns within each round (start rotated), GC on."""
    timers = {label: timeit.Timer(stmt, "gc.enable()", globals={**ns, "gc": gc}) for label, (stmt, ns) in cases.items()}
    labels = list(timers)
    best = dict.fromkeys(labels, float("inf"))
    for r in range(rounds):
        k = r % len(labels)
        for label in labels[k:] + labels[:k]:
            best[label] = min(best[label], timers[label].timeit(number) / number * 1e9)
    return best


def _row(label: str, ns_op: float, floor: float, floor_label: str) -> None:
    print(f"  {label:44} {ns_op:8.1f} {ns_op / floor:7.2f}x  (floor: {floor_label})")


def _verdict(ratio: float, goal: float) -> str:
    return "OK" if ratio <= goal else "MISSED"


class _Holder:
    """The floor of `reloader.current`: a slotted attribute holding the config."""

    __slots__ = ("current",)

    def __init__(self, current: Any) -> None:
        self.current = current


class _PinnedFloor:
    """The floor of `pinned()`: a method doing the same ContextVar read and fallback,
    nothing else."""

    __slots__ = ("_var", "current")

    def __init__(self, var: contextvars.ContextVar[Any], current: Any) -> None:
        self._var = var
        self.current = current

    def pinned(self) -> Any:
        snapshot = self._var.get()
        return snapshot.config if snapshot is not None else self.current


class _MinimalPin:
    """The least a `with` block that pins can be in Python: a slotted context manager
    whose `__enter__` sets the var and `__exit__` resets it, nothing else (no nesting, no
    "not started" check). What the `with` statement's two Python calls cost over the bare
    `cv.set()`/`cv.reset()` is the part of `pin()` no Python code can remove."""

    __slots__ = ("_token", "_value", "_var")

    def __init__(self, var: contextvars.ContextVar[Any], value: Any) -> None:
        self._var, self._value = var, value

    def __call__(self) -> _MinimalPin:
        return self

    def __enter__(self) -> Any:
        self._token = self._var.set(self._value)
        return self._value

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._var.reset(self._token)


class _Locked:
    """A locked dict walk `get("a.b")`: the design of most Python config managers."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._data: dict[str, Any] = {"a": {"b": 1}}

    def get(self, key: str) -> Any:
        with self._lock:
            node: Any = self._data
            for part in key.split("."):
                node = node[part]
            return node


def bench_reads(rounds: int) -> None:
    tmp = pathlib.Path(tempfile.mkdtemp())
    (tmp / "c.yaml").write_text("a:\n  b: 1\n")
    reloader = sr.Reloader(A, sources=[sr.YamlFile(tmp / "c.yaml", watch=False)], registry=_registry())
    reloader.start()
    plain = A()
    holder = _Holder(reloader.current)
    var: contextvars.ContextVar[Any] = contextvars.ContextVar("floor", default=None)
    floor = _PinnedFloor(var, reloader.current)
    number = 200_000
    cases = {
        "plain attrs      cfg.a.b": ("cfg.a.b", {"cfg": plain}),
        "slotted holder   h.current.a.b": ("h.current.a.b", {"h": holder}),
        "selreload        reloader.current.a.b": ("r.current.a.b", {"r": reloader}),
        "floor            f.pinned().a.b": ("f.pinned().a.b", {"f": floor}),
        "selreload        reloader.pinned().a.b": ("r.pinned().a.b", {"r": reloader}),
        "locked dict      get('a.b')": ("m.get('a.b')", {"m": _Locked()}),
    }
    best = interleaved(cases, number=number, rounds=rounds)
    # Inside a pin (what a request under PinMiddleware reads): both vars set.
    token = var.set(reloader.snapshot)
    pinned_cases = {
        "floor": cases["floor            f.pinned().a.b"],
        "pinned": cases["selreload        reloader.pinned().a.b"],
    }
    with reloader.pin():
        inside = interleaved(pinned_cases, number=number, rounds=rounds)
    var.reset(token)
    plain_ns, holder_ns = best["plain attrs      cfg.a.b"], best["slotted holder   h.current.a.b"]
    current = best["selreload        reloader.current.a.b"]
    print(f"reads: ns/op, min of {rounds} interleaved rounds x {number:,} (loop overhead included)")
    print(f"  {'case':44} {'ns/op':>8} {'ratio':>8}")
    _row("plain attrs      cfg.a.b", plain_ns, plain_ns, "itself")
    _row("slotted holder   h.current.a.b", holder_ns, plain_ns, "plain attrs")
    _row("selreload        reloader.current.a.b", current, plain_ns, "plain attrs")
    _row("selreload        reloader.current.a.b", current, holder_ns, "slotted holder")
    outside_floor = best["floor            f.pinned().a.b"]
    _row("floor            f.pinned().a.b", outside_floor, plain_ns, "plain attrs")
    pinned = best["selreload        reloader.pinned().a.b"]
    _row("selreload        reloader.pinned().a.b", pinned, outside_floor, "f.pinned()")
    _row("  inside a pin:  floor f.pinned().a.b", inside["floor"], plain_ns, "plain attrs")
    _row("  inside a pin:  reloader.pinned().a.b", inside["pinned"], inside["floor"], "f.pinned() inside")
    _row("locked dict      get('a.b')", best["locked dict      get('a.b')"], plain_ns, "plain attrs")
    ratio = current / plain_ns
    print(f"  goal: current read within 1.3x of plain attrs -> {ratio:.2f}x {_verdict(ratio, 1.3)}")
    reloader.stop()


def _consume(body: Iterable[bytes]) -> None:
    for _chunk in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _drive(coro: Any) -> None:
    """Run a coroutine that never suspends to its end, without an event loop's noise."""
    try:
        coro.send(None)
    except StopIteration:
        return
    raise RuntimeError("the app suspended")


class _NoopWsgi:
    __slots__ = ("app",)

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self.app(environ, start_response)


class _NoopAsgi:
    __slots__ = ("app",)

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def bench_pins(rounds: int) -> None:
    tmp = pathlib.Path(tempfile.mkdtemp())
    (tmp / "c.yaml").write_text("a:\n  b: 1\n")
    reloader = sr.Reloader(A, sources=[sr.YamlFile(tmp / "c.yaml", watch=False)], registry=_registry())
    reloader.start()
    var: contextvars.ContextVar[Any] = contextvars.ContextVar("floor", default=None)

    def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None

    def start_response(status: str, headers: list[Any]) -> None:
        return None

    ns: dict[str, Any] = {
        "r": reloader,
        "cv": var,
        "x": reloader.snapshot,
        "consume": _consume,
        "drive": _drive,
        "environ": {"REQUEST_METHOD": "GET", "PATH_INFO": "/"},
        "sr_": start_response,
        "scope": {"type": "http", "path": "/"},
        "minimal": _MinimalPin(var, reloader.snapshot),
        "noop_wsgi": _NoopWsgi(wsgi_app),
        "pin_wsgi": selreload.wsgi.PinMiddleware(wsgi_app, reloader),
        "noop_asgi": _NoopAsgi(asgi_app),
        "pin_asgi": selreload.asgi.PinMiddleware(asgi_app, reloader),
    }
    number = 100_000
    best = interleaved(
        {
            "floor": ("t = cv.set(x); cv.reset(t)", ns),
            "pin": ("with r.pin(): pass", ns),
            "minimal pin": ("with minimal(): pass", ns),
            "wsgi floor": ("consume(noop_wsgi(environ, sr_))", ns),
            "wsgi pin": ("consume(pin_wsgi(environ, sr_))", ns),
            "asgi floor": ("drive(noop_asgi(scope, None, None))", ns),
            "asgi pin": ("drive(pin_asgi(scope, None, None))", ns),
        },
        number=number,
        rounds=rounds,
    )
    print(f"\npins: ns/op, min of {rounds} interleaved rounds x {number:,}")
    print(f"  {'case':44} {'ns/op':>8} {'ratio':>8}")
    _row("floor            t = cv.set(x); cv.reset(t)", best["floor"], best["floor"], "itself")
    _row("minimal pin      with minimal(): pass", best["minimal pin"], best["floor"], "cv.set/reset")
    _row("selreload        with reloader.pin(): pass", best["pin"], best["floor"], "cv.set/reset")
    _row("WSGI floor       no-op middleware, 1 chunk", best["wsgi floor"], best["wsgi floor"], "itself")
    _row("WSGI             PinMiddleware, 1 chunk", best["wsgi pin"], best["wsgi floor"], "no-op middleware")
    _row("ASGI floor       no-op middleware", best["asgi floor"], best["asgi floor"], "itself")
    _row("ASGI             PinMiddleware", best["asgi pin"], best["asgi floor"], "no-op middleware")
    wsgi, asgi = best["wsgi pin"] - best["wsgi floor"], best["asgi pin"] - best["asgi floor"]
    print(f"  per-request cost of pinning: WSGI +{wsgi:.0f} ns, ASGI +{asgi:.0f} ns")
    ratio = best["pin"] / best["floor"]
    print(f"  goal: pin() within 3x of the ContextVar floor -> {ratio:.2f}x {_verdict(ratio, 3.0)}")
    print(
        f"  the least a Python `with` that pins can cost: {best['minimal pin'] / best['floor']:.2f}x the floor;"
        f" pin() is {best['pin'] / best['minimal pin']:.2f}x that (nesting and the not-started check)"
    )
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=25, help="interleaved rounds of the read and pin cases")
    parser.add_argument("--reads-only", action="store_true", help="skip the reload cases")
    args = parser.parse_args()
    bench_reads(args.rounds)
    bench_pins(args.rounds)
    if not args.reads_only:
        bench_reloads()

"""Put-to-all-5-applied latency of a fleet on etcd (goal: p99 under 100 ms).

Starts a throwaway etcd on 127.0.0.1 and five instances as separate processes (the
fleet tests' worker: a Reloader on `sr.Etcd`), then times 50 puts from the put call
until all five status keys ACK the new revision, watched from this process. The
baseline, measured in the same run, is etcd's own put -> watch event latency.

    .venv/bin/python benchmarks/bench_fleet.py
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import pathlib
import shutil
import statistics
import sys
import tempfile
import time
from types import ModuleType
from typing import Any

import aetcd

ROOT = pathlib.Path(__file__).resolve().parent.parent
HELPERS = ROOT / "tests" / "fleet"
INSTANCES = 5
PUTS = 50
WARMUP = 5
GOAL_P99_MS = 100.0


def _load(name: str) -> ModuleType:
    # The fleet tests' helpers, by path: benchmarks are scripts, not part of the test package.
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HELPERS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def document(limit: int) -> bytes:
    return f"server:\n  port: 8080\nlevel: info\nlimit: {limit}\n".encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def measure(port: int, key: str, names: list[str]) -> tuple[list[float], list[float]]:
    """(put -> all instances ACK, put -> one watch event) latencies in ms."""
    client = aetcd.Client(host="127.0.0.1", port=port, timeout=5)
    prefix = f"{key}.status/".encode()
    acked: dict[str, int] = {}
    changed = asyncio.Event()
    fleet_watch = await client.watch_prefix(prefix)
    key_watch = await client.watch(key.encode())
    key_events: asyncio.Queue[int] = asyncio.Queue()

    async def follow_fleet() -> None:
        async for event in fleet_watch:
            if event.kv.value:
                status = json.loads(event.kv.value)
                if status["outcome"] in ("applied", "unchanged", "rejected"):
                    acked[status["instance"]] = status["applied_revision"]
                    changed.set()

    async def follow_key() -> None:
        async for event in key_watch:
            key_events.put_nowait(event.kv.mod_revision)

    tasks = [asyncio.ensure_future(follow_fleet()), asyncio.ensure_future(follow_key())]
    fleet_ms: list[float] = []
    raw_ms: list[float] = []
    try:
        for i in range(WARMUP + PUTS):
            t0 = time.perf_counter()
            rev = (await client.put(key.encode(), document(1000 + i))).header.revision
            while True:
                got = await asyncio.wait_for(key_events.get(), 10)
                if got >= rev:
                    break
            raw = (time.perf_counter() - t0) * 1000
            while not all(acked.get(n, 0) >= rev for n in names):
                changed.clear()
                await asyncio.wait_for(changed.wait(), 10)
            total = (time.perf_counter() - t0) * 1000
            if i >= WARMUP:
                fleet_ms.append(total)
                raw_ms.append(raw)
    finally:
        await fleet_watch.cancel()
        await key_watch.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
    return fleet_ms, raw_ms


def main() -> int:
    binary = shutil.which("etcd")
    if binary is None:
        print("etcd not found: install it with 'apt-get install etcd-server'")
        return 1
    server_mod, instances_mod = _load("etcd_server"), _load("instances")
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        workdir = pathlib.Path(tmp)
        server = server_mod.EtcdServer(binary, workdir / "data")
        server.start()
        fleet: Any = None
        try:
            key = "/bench/config"
            asyncio.run(_put(server.client_port, key, document(0)))
            names = [f"i{n}" for n in range(INSTANCES)]
            fleet = instances_mod.Fleet(server.endpoint, key, names, lease_ttl=10, log_dir=workdir)
            fleet.wait_ready()
            fleet_ms, raw_ms = asyncio.run(measure(server.client_port, key, names))
        finally:
            if fleet is not None:
                fleet.close()
            server.stop()
    p50, p99 = percentile(fleet_ms, 50), percentile(fleet_ms, 99)
    r50, r99 = percentile(raw_ms, 50), percentile(raw_ms, 99)
    print(f"put -> all {INSTANCES} applied and ACKed, {PUTS} puts (after {WARMUP} warm-up):")
    mean = statistics.mean(fleet_ms)
    print(f"  p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   max {max(fleet_ms):7.2f} ms   mean {mean:.2f} ms")
    print("baseline, etcd put -> watch event in this process:")
    print(f"  p50 {r50:7.2f} ms   p99 {r99:7.2f} ms")
    print(f"ratio fleet/baseline: p50 x{p50 / r50:.1f}, p99 x{p99 / r99:.1f}")
    verdict = "met" if p99 < GOAL_P99_MS else "MISSED"
    print(f"goal p99 < {GOAL_P99_MS:.0f} ms: {verdict}")
    return 0


async def _put(port: int, key: str, value: bytes) -> None:
    async with aetcd.Client(host="127.0.0.1", port=port, timeout=5) as client:
        await client.put(key.encode(), value)


if __name__ == "__main__":
    sys.exit(main())

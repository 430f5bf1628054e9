"""Readers never see a half-applied config, and pins keep a snapshot for their block."""

from __future__ import annotations

import asyncio
import gc
import pathlib
import threading
import time
import weakref
from collections.abc import Callable

import attrs

import selreload as sr


def _pair_rule(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value != 2 * instance.a:  # type: ignore[attr-defined]
        raise ValueError("b must be twice a")


@sr.config
class Pair:
    a: int = sr.hot(default=0)
    b: int = sr.hot(default=0, validator=_pair_rule)


def test_readers_never_see_two_versions_mixed(config_file: Callable[[str], pathlib.Path]) -> None:
    """8 reader threads reading `current` through 1,000 reloads always see b == 2a."""
    path = config_file("a: 0\nb: 0\n")
    reloader = sr.Reloader(Pair, sources=[sr.YamlFile(path, watch=False)])
    stop = threading.Event()
    torn: list[tuple[int, int]] = []
    reads = [0] * 8

    def read(slot: int) -> None:
        while not stop.is_set():
            for _ in range(200):
                cfg = reloader.current
                a, b = cfg.a, cfg.b
                if b != 2 * a:
                    torn.append((a, b))
            reads[slot] += 200
            time.sleep(0)  # let the writer thread have the GIL between batches

    with reloader:
        threads = [threading.Thread(target=read, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        try:
            for i in range(1, 1001):
                path.write_text(f"a: {i}\nb: {2 * i}\n")
                assert reloader.reload().outcome is sr.Outcome.APPLIED
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=10)
        assert reloader.current.a == 1000
        assert reloader.snapshot is not None and reloader.snapshot.version == 1001
    assert torn == []
    assert all(n > 0 for n in reads)


def test_pin_keeps_its_snapshot_through_a_reload(config_file: Callable[[str], pathlib.Path]) -> None:
    """Inside a pin, pinned() is the snapshot from the start of the block, whatever reloads."""
    path = config_file("a: 1\nb: 2\n")
    reloader = sr.Reloader(Pair, sources=[sr.YamlFile(path, watch=False)])
    with reloader:
        with reloader.pin() as cfg:
            path.write_text("a: 2\nb: 4\n")
            assert reloader.reload().outcome is sr.Outcome.APPLIED
            assert reloader.pinned() is cfg
            assert reloader.pinned().a == 1
            assert reloader.current.a == 2
            with reloader.pin() as inner:  # nested pins keep the outer snapshot
                assert inner is cfg
        assert reloader.pinned() is reloader.current


def test_old_snapshot_freed_when_last_pin_ends(config_file: Callable[[str], pathlib.Path]) -> None:
    """An old snapshot stays alive while pinned and is freed when its last pin ends."""
    path = config_file("a: 1\nb: 2\n")
    reloader = sr.Reloader(Pair, sources=[sr.YamlFile(path, watch=False)], history=1)
    with reloader:
        pin = reloader.pin()
        old = weakref.ref(pin.__enter__())
        path.write_text("a: 2\nb: 4\n")
        reloader.reload()
        gc.collect()
        assert old() is not None  # pinned: still alive although out of history
        pin.__exit__(None, None, None)
        del pin
        gc.collect()
        assert old() is None


def test_pins_are_per_task(config_file: Callable[[str], pathlib.Path]) -> None:
    """Concurrent asyncio tasks each keep their own pinned snapshot (ContextVar)."""
    path = config_file("a: 1\nb: 2\n")
    reloader = sr.Reloader(Pair, sources=[sr.YamlFile(path, watch=False)])

    async def request(started: asyncio.Event, go: asyncio.Event) -> int:
        with reloader.pin():
            started.set()
            await go.wait()
            return reloader.pinned().a

    async def main() -> tuple[int, int]:
        started, go = asyncio.Event(), asyncio.Event()
        slow = asyncio.create_task(request(started, go))
        await started.wait()
        path.write_text("a: 5\nb: 10\n")
        reloader.reload()
        fresh_started = asyncio.Event()
        fresh = asyncio.create_task(request(fresh_started, go))
        await fresh_started.wait()
        go.set()
        return await slow, await fresh

    with reloader:
        assert asyncio.run(main()) == (1, 5)


def test_triggers_during_a_reload_coalesce(config_file: Callable[[str], pathlib.Path]) -> None:
    """request_reload() calls that arrive while a reload runs fold into one more reload."""
    path = config_file("a: 1\nb: 2\n")
    reloader = sr.Reloader(Pair, sources=[sr.YamlFile(path, watch=False)])
    entered, release = threading.Event(), threading.Event()
    applied: list[int] = []

    def slow(changes: object, snapshot: sr.Snapshot[Pair]) -> None:
        applied.append(snapshot.config.a)
        if snapshot.config.a == 2:
            entered.set()
            release.wait(10)

    reloader.on("a", slow)
    with reloader:
        path.write_text("a: 2\nb: 4\n")
        first = threading.Thread(target=reloader.request_reload, args=("file",))
        first.start()
        assert entered.wait(10)
        # Ten triggers while the first reload is inside its applier.
        path.write_text("a: 3\nb: 6\n")
        for _ in range(10):
            reloader.request_reload("file")  # returns at once: the running drainer picks it up
        release.set()
        first.join(10)
        assert applied == [1, 2, 3]
        assert reloader.current.a == 3

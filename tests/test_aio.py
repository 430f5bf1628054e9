"""asyncio on a real loop: async appliers beside sync ones in one transaction, deadlines,
subscribers, the results stream, watcher-triggered reloads, and clear refusals."""

from __future__ import annotations

import asyncio
import pathlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from tests.conftest import write_atomic


@sr.config
class App:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning"]))
    pool: int = sr.hot(default=4)


def reloader(tmp_path: pathlib.Path, *, watch: bool = False, **kw: Any) -> sr.Reloader[App]:
    path = tmp_path / "config.yaml"
    write_atomic(path, "level: info\n")
    return sr.Reloader(App, sources=[sr.YamlFile(path, watch=watch)], registry=CollectorRegistry(), **kw)


class Sync:
    def __init__(self, name: str, journal: list[tuple[str, str, bool]]) -> None:
        self.name, self.journal, self.fail = name, journal, False

    def apply(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.fail:
            raise RuntimeError("sync refuses")
        self.journal.append(("apply", self.name, False))

    def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        self.journal.append(("rollback", self.name, False))


class Async:
    """Records whether it ran on the loop's own thread."""

    def __init__(self, name: str, journal: list[tuple[str, str, bool]], loop_thread: list[int]) -> None:
        self.name, self.journal, self.loop_thread, self.fail = name, journal, loop_thread, False

    async def apply(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        await asyncio.sleep(0)
        if self.fail:
            raise RuntimeError("async refuses")
        self.journal.append(("apply", self.name, threading.get_ident() == self.loop_thread[0]))

    async def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        await asyncio.sleep(0)
        self.journal.append(("rollback", self.name, threading.get_ident() == self.loop_thread[0]))


@pytest.mark.parametrize("failing", [0, 1, 2, 3])
def test_sync_and_async_appliers_form_one_transaction(tmp_path: pathlib.Path, failing: int) -> None:
    """Sync, async, sync, async in registration order; the one at `failing` raises: every
    applier before it is rolled back newest first, async ones on the app's loop thread."""

    async def main() -> None:
        journal: list[tuple[str, str, bool]] = []
        loop_thread = [threading.get_ident()]
        appliers: list[Any] = [
            Sync("s0", journal),
            Async("a1", journal, loop_thread),
            Sync("s2", journal),
            Async("a3", journal, loop_thread),
        ]
        r = reloader(tmp_path)
        for a in appliers:
            r.on("level", a)
        async with r:
            assert [j[:2] for j in journal] == [("apply", n) for n in ("s0", "a1", "s2", "a3")]
            assert all(on_loop for _, name, on_loop in journal if name.startswith("a"))
            journal.clear()
            appliers[failing].fail = True
            write_atomic(tmp_path / "config.yaml", "level: debug\n")
            result = await r.areload()
            assert result.outcome is sr.Outcome.ROLLED_BACK
            names = [a.name for a in appliers[:failing]]
            assert [j[:2] for j in journal] == [("apply", n) for n in names] + [
                ("rollback", n) for n in reversed(names)
            ]
            assert all(on_loop for _, name, on_loop in journal if name.startswith("a"))
            assert r.current.level == "info"

    asyncio.run(main())


def test_an_async_function_applier_is_rolled_back_with_inverted_changes(tmp_path: pathlib.Path) -> None:
    """`async def` functions are appliers too: undone by awaiting them with old and new swapped."""

    async def main() -> None:
        seen: list[tuple[Any, Any]] = []
        r = reloader(tmp_path)

        @r.on("level")
        async def level(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
            seen.append((changes[0].old, changes[0].new))

        @r.on("level")
        def boom(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
            if changes[0].new == "debug":
                raise RuntimeError("no")

        async with r:
            write_atomic(tmp_path / "config.yaml", "level: debug\n")
            assert (await r.areload()).outcome is sr.Outcome.ROLLED_BACK
        assert seen == [(sr.UNSET, "info"), ("info", "debug"), ("debug", "info")]

    asyncio.run(main())


def test_an_async_applier_past_its_deadline_is_cancelled_and_the_loop_keeps_running(tmp_path: pathlib.Path) -> None:
    """An async applier that awaits too long: cancelled at the deadline, the reload is
    DEGRADED, and the loop kept serving other tasks meanwhile."""

    async def main() -> None:
        r = reloader(tmp_path, applier_timeout=0.3)
        cancelled = asyncio.Event()

        @r.on("level")
        async def slow(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
            if changes[0].new == "debug":
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    cancelled.set()
                    raise

        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async with r:
            task = asyncio.create_task(ticker())
            write_atomic(tmp_path / "config.yaml", "level: debug\n")
            t0 = time.monotonic()
            result = await r.areload()
            assert result.outcome is sr.Outcome.DEGRADED and time.monotonic() - t0 < 5
            assert "event loop" in str(result.errors[0])
            await asyncio.wait_for(cancelled.wait(), 5)
            assert ticks >= 10  # the loop ran while the applier was pending
            task.cancel()
            assert r.current.level == "info" and r.status()["healthy"] is False

    asyncio.run(main())


def test_async_subscribers_and_the_results_stream_see_each_commit(tmp_path: pathlib.Path) -> None:
    """Async subscribers run on the loop after each commit; `results()` yields each one."""

    async def main() -> None:
        r = reloader(tmp_path)
        got: list[str] = []
        done = asyncio.Event()

        @r.subscribe
        async def on_commit(result: sr.ReloadResult) -> None:
            got.append(result.applied[0].new)
            if len(got) == 2:
                done.set()

        async with r:
            stream = r.results()
            consumer = asyncio.create_task(anext(stream))
            await asyncio.sleep(0)
            for level in ("debug", "warning"):
                write_atomic(tmp_path / "config.yaml", f"level: {level}\n")
                await r.areload()
            first = await asyncio.wait_for(consumer, 5)
            second = await asyncio.wait_for(anext(stream), 5)
            await asyncio.wait_for(done.wait(), 5)
            await stream.aclose()
        assert [first.applied[0].new, second.applied[0].new] == ["debug", "warning"]
        assert got == ["debug", "warning"]

    asyncio.run(main())


def test_a_watcher_triggered_reload_runs_async_appliers_on_the_apps_loop(tmp_path: pathlib.Path) -> None:
    """A file save, seen by the real watcher on its own thread, runs the async applier on
    the loop the app started the Reloader in."""

    async def main() -> None:
        r = reloader(tmp_path, watch=True)
        ran_on: list[int] = []
        changed = asyncio.Event()

        @r.on("pool")
        async def resize(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
            ran_on.append(threading.get_ident())
            if changes[0].new == 9:
                changed.set()

        async with r:
            write_atomic(tmp_path / "config.yaml", "level: info\npool: 9\n")
            await asyncio.wait_for(changed.wait(), 10)
            for _ in range(500):  # the commit follows the applier, on the watcher's thread
                if r.current.pool == 9:
                    break
                await asyncio.sleep(0.01)
            assert r.current.pool == 9
        assert set(ran_on) == {threading.get_ident()}

    asyncio.run(main())


def test_a_coroutine_that_cannot_run_is_refused_loudly(tmp_path: pathlib.Path) -> None:
    """No silent skip: an async applier or subscriber without a loop is refused at start()
    or at registration; a sync reload() on the loop's thread with async appliers is refused."""
    r = reloader(tmp_path)

    async def applier(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        pass

    r.on("level", applier)
    with pytest.raises(sr.StateError, match="astart"):
        r.start()
    plain = reloader(tmp_path)
    plain.start()
    with pytest.raises(sr.StateError, match="event loop"):
        plain.on("level", applier)

    async def subscriber(result: sr.ReloadResult) -> None:
        pass

    with pytest.raises(sr.StateError, match="event loop"):
        plain.subscribe(subscriber)
    plain.stop()

    async def main() -> None:
        r2 = reloader(tmp_path)
        r2.on("level", applier)
        async with r2:
            with pytest.raises(sr.StateError, match="areload"):
                r2.reload()
            assert (await r2.areload()).outcome in (sr.Outcome.UNCHANGED, sr.Outcome.APPLIED)
            # on() from the loop thread while running would wait on this loop: aon() works.
            await r2.aon("pool", applier)

    asyncio.run(main())


def test_areload_does_not_run_on_the_loop(tmp_path: pathlib.Path) -> None:
    """Parsing and structuring happen on a worker thread: the loop keeps ticking through a
    reload of a big document."""

    async def main() -> None:
        @sr.config
        class Big:
            flags: dict[str, int] = sr.hot(factory=dict)

        path = tmp_path / "big.yaml"
        write_atomic(path, "flags: {}\n")
        r = sr.Reloader(Big, sources=[sr.YamlFile(path, watch=False)], registry=CollectorRegistry())
        async with r:
            write_atomic(path, "flags:\n" + "".join(f"  k{i}: {i}\n" for i in range(20_000)))
            gaps: list[float] = []

            async def ticker() -> None:
                last = time.perf_counter()
                while True:
                    await asyncio.sleep(0.001)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            task = asyncio.create_task(ticker())
            result = await r.areload()
            task.cancel()
            assert result.outcome is sr.Outcome.APPLIED and len(r.current.flags) == 20_000
            assert gaps and result.duration_s > 4 * max(gaps)  # the loop was never held for the reload

    asyncio.run(main())


def test_fastapi_lifespan_under_uvicorn_swaps_the_client_live(tmp_path: pathlib.Path) -> None:
    """The async FastAPI example under a real uvicorn on loopback: the lifespan starts the
    Reloader, a save swaps the httpx client on the app's loop, and a bad value is rolled back."""
    import os
    import socket
    import subprocess
    import sys

    import httpx

    cfg = tmp_path / "upstream.yaml"
    write_atomic(cfg, "upstream:\n  base_url: http://127.0.0.1:9001\n  timeout: 5s\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = pathlib.Path(__file__).resolve().parents[1]
    log = open(tmp_path / "uvicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "examples.fastapi_async:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=root,
        env={**os.environ, "SELRELOAD_EXAMPLE_CONFIG": str(cfg), "SELRELOAD_ADMIN_TOKEN": "t0ken"},
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"

    def get() -> dict[str, Any] | None:
        try:
            return httpx.get(url + "/upstream", timeout=2).json()  # type: ignore[no-any-return]
        except httpx.TransportError:
            return None

    def wait(pred: Any, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = get()
            if got is not None and pred(got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"timed out; last answer {get()!r}")

    try:
        wait(lambda b: b["base_url"] == "http://127.0.0.1:9001")
        write_atomic(cfg, "upstream:\n  base_url: http://127.0.0.1:9002\n  timeout: 2s\n")
        # (The applier swaps the client just before the commit makes version 2 live.)
        body = wait(lambda b: b["base_url"] == "http://127.0.0.1:9002" and b["version"] == 2)
        assert body["timeout"] == 2.0
        # An invalid value is refused; the client stays.
        write_atomic(cfg, "upstream:\n  base_url: http://127.0.0.1:9003\n  max_connections: 0\n")
        status = httpx.post(url + "/admin/reload", headers={"Authorization": "Bearer t0ken"}, timeout=5).json()
        assert status["outcome"] == "invalid"
        assert get() == body
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()

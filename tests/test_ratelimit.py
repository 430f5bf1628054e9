"""`appliers.RateLimit`: rate and burst change atomically, earned tokens kept, rollback exact,
and no burst beyond the new limit under 8 threads and 1,000 asyncio tasks."""

from __future__ import annotations

import asyncio
import bisect
import pathlib
import threading
import time

import pytest
from conftest import write_atomic
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload import appliers


@sr.config
class Limit:
    rate: float = sr.hot(default=10.0)
    burst: float = sr.hot(default=10.0)


@sr.config
class App:
    limit: Limit = sr.field(factory=Limit)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def reloader_for(tmp_path: pathlib.Path, rate: float, burst: float) -> tuple[sr.Reloader[App], pathlib.Path]:
    cfg = tmp_path / "c.yaml"
    write_atomic(cfg, f"limit: {{rate: {rate}, burst: {burst}}}\n")
    return sr.Reloader(App, sources=[sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry()), cfg


def test_earned_tokens_are_kept_and_capped_at_the_new_burst(tmp_path: pathlib.Path) -> None:
    """Tokens earned at the old rate before a change stay; more than the new burst never does."""
    clock = Clock()
    limit = appliers.RateLimit(clock=clock)
    reloader, cfg = reloader_for(tmp_path, 10, 20)
    reloader.on("limit", limit)
    with reloader:
        assert (limit.rate, limit.burst) == (10, 20)
        while limit.try_acquire():
            pass
        clock.now += 0.5  # 5 tokens earned at 10/s
        write_atomic(cfg, "limit: {rate: 100, burst: 50}\n")
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        assert limit.tokens() == pytest.approx(5)  # kept, not reset to 0 or to the burst
        clock.now += 10
        assert limit.tokens() == 50
        write_atomic(cfg, "limit: {rate: 100, burst: 3}\n")
        reloader.reload()
        assert limit.tokens() == 3


def test_invalid_limits_are_refused_and_nothing_changes(tmp_path: pathlib.Path) -> None:
    """A rate of 0 or below, or a burst below 1, rolls the reload back (NaN is INVALID earlier)."""
    limit = appliers.RateLimit()
    reloader, cfg = reloader_for(tmp_path, 10, 20)
    reloader.on("limit", limit)
    with reloader:
        for bad in ("rate: 0", "rate: -1", "burst: 0.5"):
            write_atomic(cfg, f"limit: {{{bad}}}\n")
            result = reloader.reload()
            assert result.outcome is sr.Outcome.ROLLED_BACK, bad
            assert "limit." in str(result.errors[0])
            assert (limit.rate, limit.burst) == (10, 20)


def test_rollback_restores_the_old_limits_and_tokens_exactly(tmp_path: pathlib.Path) -> None:
    """When a later applier fails, the bucket is as if the old limits had held throughout."""
    clock = Clock()
    limit = appliers.RateLimit(clock=clock)
    reloader, cfg = reloader_for(tmp_path, 10, 20)
    reloader.on("limit", limit)

    @reloader.on("limit.rate")
    def fail_on_big(changes: object, snapshot: object) -> None:
        if reloader_rate[0] > 500:
            raise RuntimeError("downstream refuses")

    reloader_rate = [0.0]
    with reloader:
        for _ in range(15):
            assert limit.try_acquire()
        before = limit.tokens()
        reloader_rate[0] = 1000
        write_atomic(cfg, "limit: {rate: 1000, burst: 2}\n")
        assert reloader.reload().outcome is sr.Outcome.ROLLED_BACK
        assert (limit.rate, limit.burst) == (10, 20)
        assert limit.tokens() == pytest.approx(before)  # the 3 clipped by burst 2 are back
        clock.now += 0.2
        assert limit.tokens() == pytest.approx(before + 2)


def test_acquire_waits_and_times_out() -> None:
    """`acquire` blocks until a token comes; with a timeout it gives up; n above burst is refused."""
    limit = appliers.RateLimit(rate=100, burst=1)
    assert limit.acquire() and limit.acquire(timeout=1)
    assert not limit.acquire(timeout=0.001)
    with pytest.raises(ValueError, match="burst"):
        limit.acquire(5)


@pytest.mark.slow
def test_no_burst_beyond_the_new_limit_and_no_token_lost_under_threads_and_tasks(tmp_path: pathlib.Path) -> None:
    """8 threads and 1,000 asyncio tasks hammer one bucket through a reload that lowers the
    rate: no window after the change grants more than the new burst + rate x window, and
    the total granted is what the bucket earned (no token lost, none invented)."""
    r1, b1, r2, b2 = 1000.0, 100.0, 250.0, 25.0
    phase = 0.4
    limit = appliers.RateLimit()
    reloader, cfg = reloader_for(tmp_path, r1, b1)
    reloader.on("limit", limit)
    grants: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def thread_worker() -> None:
        local = []
        while not stop.is_set():
            if limit.try_acquire():
                local.append(time.monotonic())
            else:
                time.sleep(0.0002)
        with lock:
            grants.extend(local)

    async def task_worker() -> None:
        while not stop.is_set():
            if await limit.acquire_async(timeout=0.05):
                grants.append(time.monotonic())

    changed_at: list[float] = []

    def change() -> None:
        time.sleep(phase)
        write_atomic(cfg, f"limit: {{rate: {r2}, burst: {b2}}}\n")
        changed_at.append(time.monotonic())
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        changed_at.append(time.monotonic())
        time.sleep(phase)
        stop.set()

    async def main() -> None:
        tasks = [asyncio.create_task(task_worker()) for _ in range(1000)]
        await asyncio.gather(*tasks)

    with reloader:
        start = time.monotonic()
        threads = [threading.Thread(target=thread_worker) for _ in range(8)]
        changer = threading.Thread(target=change)
        for t in threads:
            t.start()
        changer.start()
        asyncio.run(main())
        changer.join()
        for t in threads:
            t.join()
        end = time.monotonic()
    grants.sort()
    t_change_begin, t_change_end = changed_at
    # Supply: a full bucket at start, the old rate until the change, the new rate after it.
    supply_max = b1 + r1 * (t_change_end - start) + r2 * (end - t_change_begin)
    # Demand exceeds supply once the workers run (counted from the first grant: tokens
    # earned while 1,000 tasks are still being created overflow a full bucket), so the
    # bucket stays near empty and what it earns is granted. 25% slack: on a loaded machine
    # the workers miss GIL turns and tokens overflow a full bucket (the full suite on 2
    # cores measured 0.897). A bucket granting at the wrong rate is off by far more: the
    # new rate applied from the start grants 40% of this.
    first = grants[0]
    supply_min = r1 * (t_change_begin - first) + r2 * (end - t_change_end)
    assert supply_min * 0.75 <= len(grants) <= supply_max + 1, (len(grants), supply_min, supply_max)
    assert len(grants) == limit._spent  # every token the bucket gave reached a caller
    # After the change: any window of w seconds grants at most b2 + r2 * w (timestamps are
    # taken after the grant, so allow a few for scheduling jitter).
    after = grants[bisect.bisect_right(grants, t_change_end) :]
    assert after, "nothing granted after the change"
    for w in (0.01, 0.05, 0.1):
        worst = max(bisect.bisect_right(after, t + w) - i for i, t in enumerate(after))
        assert worst <= b2 + r2 * w + 10, (w, worst)
    # And before it, the old limit held as well (a sanity check of the counting).
    before = grants[: bisect.bisect_left(grants, t_change_begin)]
    worst_before = max(bisect.bisect_right(before, t + 0.05) - i for i, t in enumerate(before))
    assert worst_before <= b1 + r1 * 0.05 + 10

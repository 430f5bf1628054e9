"""The pool that runs etcd watches' callbacks (`_etcd_dispatch.Dispatcher`), with real threads:
every wake runs its job, a burst notifies the pool once, a hung job holds one thread only,
a wake during a run makes one more run, and `remove()` waits for the run in flight."""

from __future__ import annotations

import threading
import time

import pytest

from selreload._etcd_dispatch import Dispatcher, Job


def _until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def pool() -> object:
    dispatcher = Dispatcher("test-dispatch", max_threads=4)
    yield dispatcher
    dispatcher.close()


def test_a_burst_of_wakes_runs_every_job_once_per_wake_and_notifies_the_pool_once(
    pool: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    jobs = [Job(f"j{i}", lambda i=i: runs.append(i), tick=None, interval=1.0) for i in range(200)]
    pool.wake(jobs[0])  # starts a thread, which then waits
    _until(lambda: runs == [0] and pool._idle == 1)
    notified: list[int] = []
    real = pool._cond.notify
    monkeypatch.setattr(pool._cond, "notify", lambda n=1: (notified.append(n), real(n)))
    with pool._cond:  # the whole burst lands before the woken thread runs
        for job in jobs[1:]:
            pool.wake(job)
    _until(lambda: len(runs) == 200)
    assert sorted(runs) == list(range(200))
    assert notified == [1]


def test_a_hung_job_holds_one_thread_and_the_others_still_run(pool: Dispatcher) -> None:
    release = threading.Event()
    ran: list[str] = []
    hung = Job("hung", lambda: (ran.append("hung"), release.wait(30)), tick=None, interval=1.0)
    pool.wake(hung)
    _until(lambda: ran == ["hung"])
    others = [Job(f"j{i}", lambda i=i: ran.append(f"j{i}"), tick=None, interval=1.0) for i in range(20)]
    for job in others:
        pool.wake(job)
    _until(lambda: len(ran) == 21)
    assert len(pool._threads) <= pool.max_threads
    release.set()


def test_a_wake_during_a_run_makes_one_more_run(pool: Dispatcher) -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def notify() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            started.set()
            release.wait(30)

    job = Job("j", notify, tick=None, interval=1.0)
    pool.wake(job)
    started.wait(10)
    for _ in range(5):  # coalesce into one run after this one
        pool.wake(job)
    release.set()
    _until(lambda: len(runs) == 2)
    time.sleep(0.1)
    assert runs == [0, 1]


def test_remove_waits_for_the_run_in_flight_and_no_run_follows(pool: Dispatcher) -> None:
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def notify() -> None:
        runs.append("run")
        started.set()
        release.wait(30)

    job = Job("j", notify, tick=None, interval=1.0)
    pool.wake(job)
    started.wait(10)
    pool.wake(job)  # would run again after this run, but the job is removed first
    threading.Timer(0.2, release.set).start()
    t0 = time.monotonic()
    pool.remove(job, timeout=10)
    assert time.monotonic() - t0 >= 0.15  # it waited for the run to end
    assert not job.running
    time.sleep(0.1)
    assert runs == ["run"]


def test_ticks_run_without_wakes(pool: Dispatcher) -> None:
    ticks: list[float] = []
    job = Job("t", lambda: None, tick=lambda: ticks.append(time.monotonic()), interval=0.05)
    pool.add(job)
    _until(lambda: len(ticks) >= 3)

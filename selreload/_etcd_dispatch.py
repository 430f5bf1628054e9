"""A few threads that run etcd watches' callbacks (reloads, health re-checks) off the loop thread.

A reload reads etcd through the loop, so it cannot run on the loop thread. One thread per
watch is the simple answer, but a process hosting hundreds of instances then has hundreds
of threads woken by one put, all contending for the GIL: measured on 2 cores with 50
instances in one process, 2.2 ms of CPU per put per instance against 1.5 ms with a shared
pool. A `Dispatcher` serves many `Job`s: the loop thread `wake()`s a job, a pool thread
runs it. The pool grows on demand up to `max_threads`, so a reload stuck in a hung applier
holds one thread, not every instance of the process.

A job never runs on two threads at once, and a wake that arrives while it runs makes it
run once more after (wakes coalesce, as the Reloader's triggers do).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger("selreload.etcd")


class Job:
    """What a watch asks of the dispatcher: `notify()` when woken, `tick()` every
    `interval` seconds without a wake (both called on a pool thread)."""

    __slots__ = ("closed", "interval", "label", "notify", "queued", "running", "tick", "tick_at", "woken")

    def __init__(
        self, label: str, notify: Callable[[], None], *, tick: Callable[[], None] | None, interval: float
    ) -> None:
        self.label = label
        self.notify = notify
        self.tick = tick
        self.interval = interval
        self.woken = False
        self.queued = False
        self.running = False
        self.closed = False
        self.tick_at = 0.0

    def __repr__(self) -> str:
        return f"<Job {self.label}>"


class Dispatcher:
    """Runs woken `Job`s on up to `max_threads` daemon threads named `name`."""

    def __init__(self, name: str, *, max_threads: int = 4) -> None:
        self.name = name
        self.max_threads = max_threads
        self.died = False
        # Taken as `with self._lock` (a C context manager) where no wait follows: the
        # loop thread takes it once per wake, for each of the process's instances.
        self._lock = lock = threading.RLock()
        self._cond = threading.Condition(lock)  # the pool threads wait on it for work
        # `remove()` waits on this one for a run to end, under the same lock: a run's end
        # then wakes a waiting `remove()` only, not every idle pool thread (each such wake
        # is a futex call and a GIL handoff, per run, per idle thread).
        self._ended = threading.Condition(lock)
        self._removing = 0
        self._ready: collections.deque[Job] = collections.deque()
        self._timers: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # pool threads waiting for work
        self._signalled = 0  # of those, the ones notified that have not woken yet
        self._closed = False
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"<Dispatcher {self.name} threads={len(self._threads)}>"

    def add(self, job: Job) -> None:
        """Start serving `job` (its first tick is one interval from now)."""
        with self._cond:
            self._schedule_tick(job, time.monotonic())
            self._kick()

    def wake(self, job: Job) -> None:
        """Run `job.notify()` soon (once more after the current run, if it runs now)."""
        with self._lock:
            if job.closed:
                return
            job.woken = True
            if not job.queued and not job.running:
                job.queued = True
                self._ready.append(job)
                self._kick()

    def remove(self, job: Job, timeout: float) -> None:
        """Stop serving `job`, and wait (at most `timeout`) for a run in flight to end,
        unless the caller is that run (an applier stopping its own Reloader)."""
        with self._cond:
            job.closed = True
            if job.queued:
                job.queued = False
                self._ready.remove(job)
            if getattr(self._local, "job", None) is job:
                return
            deadline = time.monotonic() + timeout
            self._removing += 1
            try:
                while job.running and (left := deadline - time.monotonic()) > 0:
                    self._ended.wait(left)
            finally:
                self._removing -= 1

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads (joining all but the caller's own)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def alive(self) -> bool:
        """False when a pool thread died of something it must not catch (`SystemExit`)."""
        return not self.died

    # --- the pool ---------------------------------------------------------------------------

    def _schedule_tick(self, job: Job, now: float) -> None:
        if job.tick is not None and not job.closed:
            # On a grid of a quarter interval: the ticks of many jobs fall due together and
            # one thread wake serves them all (a wake per job per second cost 0.14 ms each
            # with 125 jobs in a process), each still within 1.25 intervals of its last run.
            grid = job.interval / 4
            job.tick_at = math.ceil((now + job.interval) / grid) * grid
            heapq.heappush(self._timers, (job.tick_at, next(self._seq), job))

    def _kick(self) -> None:
        # Under the lock. An idle thread takes the work; else a new one, up to the limit.
        # A thread woken takes every job ready before it waits again: one put that wakes
        # the 125 instances of a process notifies one thread, not 125 times.
        if self._idle:
            if self._idle > self._signalled:  # else every idle thread is on its way already
                self._signalled += 1
                self._cond.notify()
        elif len(self._threads) < self.max_threads and not self._closed:
            thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def _next(self) -> tuple[Job, bool] | None:
        """Under the lock: the next job to run and whether it was woken (else: a tick)."""
        while not self._closed:
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                at, _, job = heapq.heappop(self._timers)
                if at == job.tick_at and not (job.closed or job.queued or job.running):
                    job.queued = True
                    self._ready.append(job)
            if self._ready:
                job = self._ready.popleft()
                job.queued, job.running = False, True
                woken, job.woken = job.woken, False
                return job, woken
            timeout = self._timers[0][0] - now if self._timers else None
            self._idle += 1
            try:
                self._cond.wait(timeout)
            finally:
                self._idle -= 1
                # Woken by a notify, or by its timeout (then this count is only low for a
                # while, which costs a notify more, never a job left waiting).
                self._signalled = max(self._signalled - 1, 0)
        return None

    def _serve(self) -> None:
        try:
            while True:
                with self._cond:
                    picked = self._next()
                if picked is None:
                    return
                job, woken = picked
                self._local.job = job
                try:
                    self._run(job, woken)
                finally:
                    self._local.job = None
                    with self._lock:
                        job.running = False
                        if job.woken and not job.closed:
                            job.queued = True
                            self._ready.append(job)
                        else:
                            self._schedule_tick(job, time.monotonic())
                        if self._removing:
                            self._ended.notify_all()  # a remove() is waiting for a run to end
        except BaseException:
            self.died = True
            raise
        finally:
            with self._cond:
                if threading.current_thread() in self._threads:
                    self._threads.remove(threading.current_thread())

    @staticmethod
    def _run(job: Job, woken: bool) -> None:
        try:
            if woken:
                job.notify()
            elif job.tick is not None:
                job.tick()
        except Exception:  # the pool must outlive a failing callback
            what = "reload after a change" if woken else "periodic health check"
            log.exception("etcd %s: %s failed", job.label, what)

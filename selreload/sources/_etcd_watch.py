"""The etcd watch supervisor: one key watched, a lease kept alive, the status written under it.

One supervisor task on the loop thread keeps a session up:

    connect -> watch KEY from the last revision seen + 1 -> grant a lease -> write status
            -> (on any failure) drop the client, back off, reconnect and catch up

It knows nothing of the source it serves: it gets a `KeySession`, the loop that session
runs on, a `notify` to call and the statuses to write (`publish`), and hands back the
latest value it saw (`pushed`) and the moment it stops (`on_stop`).

`notify` is never called from the loop thread: a reload reads etcd, which needs the loop,
so a dispatcher makes the calls instead: the pool the watches of a process share on one
etcd client (`_etcd_dispatch`), or a one-thread pool of the watch's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from .._etcd_client import CompactedError, KeyEvent, LoopThread, client_errors
from .._etcd_dispatch import Dispatcher, Job
from .._typing import NotifyFn

log = logging.getLogger("selreload.etcd")

BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 2.0


class EventStream(Protocol):
    """A watch's events (`selreload._etcd_client.KeyWatch`); `aclose()` cancels the watch."""

    def __aiter__(self) -> AsyncIterator[KeyEvent]: ...

    def aclose(self) -> Awaitable[None]: ...


class KeySession(Protocol):
    """What the supervisor needs of a session (`selreload._etcd_client.Session`)."""

    revision: int

    @property
    def connected(self) -> bool: ...

    async def get(self, key: str) -> tuple[bytes | None, int, int]: ...

    async def watch(self, key: str, *, start_revision: int) -> EventStream: ...

    async def grant(self, ttl: int) -> int: ...

    async def refresh(self, lease: int) -> int: ...

    async def revoke(self, lease: int) -> None: ...

    async def put(self, key: str, value: bytes, *, lease: int | None = None) -> None: ...

    async def reconnect(self) -> None: ...

    async def close(self) -> None: ...


class Backoff:
    """Exponential backoff with jitter, so a fleet does not reconnect in lockstep."""

    def __init__(self, low: float = BACKOFF_MIN_S, high: float = BACKOFF_MAX_S) -> None:
        self.low, self.high = low, high
        self.delay = low

    def reset(self) -> None:
        self.delay = self.low

    def next(self) -> float:
        delay = self.delay * random.uniform(0.5, 1.0)
        self.delay = min(self.delay * 2, self.high)
        return delay


class _LeaseLost(Exception):
    """etcd no longer knows the lease (it expired while we were away)."""


class EtcdWatch:
    """A running watch of one key, with the lease that keeps `status_key` alive.

    Args:
        key: the watched key.
        label: who watches, for the repr and thread names (the instance name).
        session: the connection; shared with the source's reads, on `runner`'s loop.
        runner: the loop thread the session runs on.
        notify: called (from a dispatcher thread) after a change or a reconnect.
        status_key: where `publish`ed statuses go, under this watch's lease.
        lease_ttl: seconds the status outlives this process.
        timeout: seconds for one etcd request.
        status: the status to write as soon as a lease exists (the last one published).
        also: more keys to watch (the rollout record and the candidate); their events
            only advance `side_revision` and wake a reload, which reads them.
        tick: called from the dispatcher every `tick_interval` seconds without an
            event (the source re-evaluates its health check).
        on_stop: called once by `stop()`, after the lease is revoked; the loop thread is
            then the caller's to stop.
        dispatcher: the pool that runs `notify` and `tick` (shared with the other watches
            on the same client); default: a one-thread pool of this watch's own.
    """

    def __init__(
        self,
        *,
        key: str,
        label: str,
        session: KeySession,
        runner: LoopThread,
        notify: NotifyFn,
        status_key: str,
        lease_ttl: int,
        timeout: float,
        status: dict[str, Any] | None = None,
        on_stop: Callable[[EtcdWatch], None] = lambda watch: None,
        also: tuple[str, ...] = (),
        tick: Callable[[], None] | None = None,
        tick_interval: float = 1.0,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.key, self.label, self.runner = key, label, runner
        self._session = session
        self._notify = notify
        self._status_key = status_key
        self._lease_ttl = lease_ttl
        self._timeout = timeout
        self._status = status
        self._on_stop = on_stop
        # The latest event the connected watch delivered; one reference, assigned on the
        # loop thread, read by the source's load(). None without a live watch.
        self.pushed: KeyEvent | None = None
        # The newest revision an event on an `also` key carried (0: none since connecting).
        self.side_revision = 0
        self._also = also
        self._tick = tick
        self._tick_interval = tick_interval
        self._closing = False
        self._own_dispatcher = dispatcher is None
        self._dispatcher = dispatcher or Dispatcher(f"selreload-etcd-notify {key}", max_threads=1)
        self._job = Job(label, lambda: self._notify("etcd"), tick=tick, interval=tick_interval)
        self._status_ready: asyncio.Event | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._lease: int | None = None
        self._dispatcher.add(self._job)
        self._task = runner.submit(self._supervise())

    def __repr__(self) -> str:
        return f"<EtcdWatch {self.key} as {self.label}>"

    # --- the sync side --------------------------------------------------------------------

    def _wake(self) -> None:
        self._dispatcher.wake(self._job)

    def publish(self, status: dict[str, Any]) -> None:
        """Queue a write of `status` (never blocks a reload); a later one replaces it."""
        self._status = status
        if self._closing:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us: stop() is under way
            self.runner.call_soon_batched(self._status_changed)

    def alive(self) -> bool:
        """False only when the supervisor or its dispatcher died while watching."""
        return self._closing or (not self._task.done() and self._dispatcher.alive())

    def stop(self) -> None:
        """Stop watching, revoke the lease (the status row goes at once), join the threads."""
        if self._closing:
            return
        self._closing = True
        # Wait for a reload in flight while the loop still runs: it needs the loop. (Not
        # when an applier stops the Reloader from that very reload.)
        self._dispatcher.remove(self._job, self._timeout + 2.0)
        if self._own_dispatcher:
            self._dispatcher.close(self._timeout + 2.0)
        try:
            self.runner.call(self._shutdown(), self._timeout + 1.0)
        except Exception:  # etcd may be gone; the lease then just expires
            log.debug("etcd %s: shutdown", self.key, exc_info=True)
        self._on_stop(self)

    # --- the loop side ----------------------------------------------------------------------

    def _status_changed(self) -> None:
        if self._status_ready is not None:
            self._status_ready.set()

    async def _shutdown(self) -> None:
        task = self._supervisor
        if task is not None:
            task.cancel()
        session, lease = self._session, self._lease
        # The lease first, so the status row goes at once: the session's watches are
        # cancelled in etcd meanwhile, and on a shared, busy watch stream that can be slow.
        # Without an open client etcd is likely gone: do not wait on a new one to revoke.
        if session.connected and lease is not None:
            try:
                await asyncio.wait_for(session.revoke(lease), self._timeout)
            except client_errors():
                log.debug("etcd %s: could not revoke lease %x", self.key, lease, exc_info=True)
        if task is not None:
            # Its watches cancelled in etcd before the next user's: a shared stream takes
            # them one by one. Bounded: a cancel still under way then ends on the loop.
            await asyncio.wait({task}, timeout=self._timeout)
        late = self._lease
        if late is not None and late != lease and session.connected:
            # Granted while the session was still starting (a cancel does not interrupt
            # every aetcd call): its status row must go too.
            with contextlib.suppress(*client_errors(), asyncio.TimeoutError):
                await asyncio.wait_for(session.revoke(late), self._timeout)
        await session.close()

    async def _supervise(self) -> None:
        backoff = Backoff()
        self._supervisor = asyncio.current_task()
        self._status_ready = asyncio.Event()
        attempts = 0
        while not self._closing:
            connected: list[bool] = []
            try:
                await self._run_session(catch_up=attempts > 0, connected=connected, backoff=backoff)
            except asyncio.CancelledError:
                if self._closing or self._supervisor is None or self._supervisor.cancelling():
                    raise
                # Not us being stopped: gRPC cancelled a call because a load() closed the
                # failed channel this session shared. That is a lost connection too.
                log.debug("etcd %s: session call cancelled by a closed channel", self.key)
                await self._session.reconnect()
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect, keeping the live config
                if self._closing:
                    return
                if connected:
                    log.warning("etcd %s: connection lost (%s); reconnecting", self.key, exc)
                else:
                    log.debug("etcd %s: cannot connect (%s)", self.key, exc)
                await self._session.reconnect()
            attempts += 1
            await asyncio.sleep(backoff.next())

    async def _run_session(self, *, catch_up: bool, connected: list[bool], backoff: Backoff) -> None:
        session = self._session
        if session.revision == 0:
            await session.get(self.key)  # from now: the header revision of a read
        # Every watch opened is cancelled in the `finally`: on a channel shared with other
        # sources, a watch nobody cancels keeps queueing events nobody reads.
        streams: list[EventStream] = []
        tasks: list[asyncio.Future[None]] = []
        try:
            try:
                await self._open(streams, session.revision + 1)
            except CompactedError:
                # History before the compaction is gone: read what etcd holds now instead.
                await session.get(self.key)
                await self._open(streams, session.revision + 1)
                catch_up = True
            lease = await session.grant(self._lease_ttl)
            self._lease = lease
            if self._closing:
                return  # stopped while starting: stop() revokes the lease
            connected.append(True)
            backoff.reset()
            if catch_up:
                # An event seen before the outage may have reached a reload that could not
                # read etcd any more: one reload now reads what etcd holds (UNCHANGED if
                # nothing new).
                log.info("etcd %s: reconnected at revision %d", self.key, session.revision)
                self._wake()
            if self._status is not None and self._status_ready is not None:
                self._status_ready.set()  # the new lease needs the status written again
            tasks = [
                asyncio.ensure_future(self._events(streams[0])),
                *(asyncio.ensure_future(self._side_events(e)) for e in streams[1:]),
                asyncio.ensure_future(self._keepalive(lease)),
                asyncio.ensure_future(self._write_status(lease)),
            ]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended the session
            raise ConnectionError("etcd watch ended")
        finally:
            self.pushed = None  # without a live watch, only a read is current
            self.side_revision = 0
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(s.aclose() for s in streams), return_exceptions=True)

    async def _open(self, streams: list[EventStream], start: int) -> None:
        for stream in streams:
            await stream.aclose()
        streams.clear()
        for key in (self.key, *self._also):
            streams.append(await self._session.watch(key, start_revision=start))

    async def _events(self, events: AsyncIterable[KeyEvent]) -> None:
        async for event in events:
            self.pushed = event
            self._wake()

    async def _side_events(self, events: AsyncIterable[KeyEvent]) -> None:
        async for event in events:
            self.side_revision = max(self.side_revision, event.revision)
            self._wake()

    async def _keepalive(self, lease: int) -> None:
        while True:
            await asyncio.sleep(max(self._lease_ttl / 3.0, 0.2))
            if await self._session.refresh(lease) <= 0:
                raise _LeaseLost(f"lease {lease:x} expired")

    async def _write_status(self, lease: int) -> None:
        ready = self._status_ready
        if ready is None:  # pragma: no cover - set before any session starts
            return
        while True:
            await ready.wait()
            ready.clear()
            status = self._status
            if status is not None and not self._closing:
                body = json.dumps(status, sort_keys=True).encode("utf-8")
                await self._session.put(self._status_key, body, lease=lease)

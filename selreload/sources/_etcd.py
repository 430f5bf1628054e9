"""The etcd source: one key holds a YAML document; each instance ACKs or NACKs every revision.

aetcd is asyncio-only, so each `Etcd` runs its client in an event loop on its own thread
(`_LoopThread`): `load()` blocks on a future from that loop, and synchronous apps need
nothing from asyncio. While watching, one supervisor task on that loop keeps a session up:

    connect -> watch KEY from the last revision seen + 1 -> grant a lease -> write status
            -> (on any failure) drop the client, back off, reconnect and catch up

`notify` is never called from the loop thread: a reload calls `load()`, which needs the
loop, so a small dispatcher thread makes the calls instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import logging
import os
import random
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import ConfigError, Issue
from .._result import Outcome
from .._typing import Layer, Watcher
from ._file import YamlFile

if TYPE_CHECKING:
    from .._result import ReloadResult
    from .._snapshot import Snapshot

T = TypeVar("T")

log = logging.getLogger("selreload.etcd")

DEFAULT_PORT = 2379
# Outcomes that accept a revision (ACK): the live config is what that revision holds,
# less any restart-only change, which the status lists as rejected.
_ACK = (Outcome.APPLIED, Outcome.UNCHANGED, Outcome.REJECTED)
_BACKOFF_MIN_S = 0.05
_BACKOFF_MAX_S = 2.0


def _aetcd() -> Any:
    try:
        import aetcd
    except ImportError:  # pragma: no cover - aetcd is a dependency of the `etcd` extra
        raise ImportError("sr.Etcd needs aetcd: pip install 'selreload[etcd]'") from None
    return aetcd


def parse_endpoints(endpoints: str | Sequence[str]) -> tuple[tuple[str, int], ...]:
    """`"http://10.0.0.1:2379,10.0.0.2"` (or a list of those) -> `((host, port), ...)`.

    Raises:
        ValueError: no endpoint, a TLS (`https://`) endpoint, or a port that is not a number.
    """
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    out: list[tuple[str, int]] = []
    for raw in items:
        text = raw.strip()
        if not text:
            continue
        if text.startswith("https://"):
            raise ValueError(f"{text}: TLS endpoints are not supported (aetcd speaks plain gRPC)")
        text = text.removeprefix("http://").rstrip("/")
        if text.startswith("["):  # [::1]:2379
            host, _, rest = text[1:].partition("]")
            port_text = rest.removeprefix(":")
        elif text.count(":") == 1:
            host, port_text = text.split(":")
        else:
            host, port_text = text, ""
        try:
            port = int(port_text) if port_text else DEFAULT_PORT
        except ValueError:
            raise ValueError(f"{raw.strip()}: expected host:port, the port is not a number") from None
        out.append((host, port))
    if not out:
        raise ValueError(f"no etcd endpoint in {endpoints!r}")
    return tuple(out)


def _show(endpoints: Sequence[tuple[str, int]]) -> str:
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in endpoints)


def _bytes_key(key: str) -> bytes:
    return key.encode("utf-8")


def _range_end(key: bytes) -> bytes:
    # [key, key + "\0") is the one key: unlike get(), a range read returns the header
    # revision even when the key is missing.
    return key + b"\0"


def client_errors() -> tuple[type[BaseException], ...]:
    """What a dead, restarting or unreachable etcd raises through aetcd."""
    return (_aetcd().ClientError, OSError, TimeoutError)


def new_client(host: str, port: int, timeout: float) -> Any:
    """An aetcd client; channels reconnect fast because etcd restarts are expected."""
    options = {"grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 1000}
    return _aetcd().Client(host=host, port=port, timeout=timeout, options=options)


async def with_client(endpoints: Sequence[tuple[str, int]], timeout: float, op: Callable[[Any], Awaitable[T]]) -> T:
    """Run `op(client)` against the first endpoint that answers."""
    errors = client_errors()
    last: BaseException | None = None
    for host, port in endpoints:
        client = new_client(host, port, timeout)
        try:
            return await op(client)
        except errors as exc:
            last = exc
        finally:
            await client.close()
    raise ConnectionError(f"cannot reach etcd at {_show(endpoints)}: {last}")


class _Document(YamlFile):
    """YamlFile's parsing and guards (size of the expanded tree, depth, encoding) for bytes
    that come from etcd instead of a file; errors and origins carry `name`."""

    def __init__(self, name: str) -> None:
        super().__init__(name, watch=False)

    def parse(self, data: bytes, digest: str) -> Layer:
        return self._layer(data, digest)


def parse_document(name: str, data: bytes, digest: str) -> Layer:
    """Parse a YAML document exactly like `YamlFile` parses a file, naming it `name`
    (`etcd:/app/config@42`), so origins read `etcd:/app/config@42:3:10`.

    Raises:
        ConfigError: not UTF-8, a YAML error (at `name:line:col`), empty, not a mapping,
            or over the nesting and size budgets.
    """
    return _Document(name).parse(data, digest)


class _LoopThread:
    """An asyncio event loop running on its own daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coro` on the loop and wait for it, at most `timeout` seconds."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer from etcd within {timeout:g}s") from None
        except concurrent.futures.CancelledError:
            # gRPC cancels the calls in flight on a channel that is closed under them.
            raise ConnectionError("etcd request cancelled: the connection was closed") from None

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)


def run_sync(coro_fn: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
    """Run one coroutine on a private loop thread (safe even when the caller runs a loop)."""
    runner = _LoopThread("selreload-etcd-call")
    try:
        return runner.call(coro_fn(), timeout)
    finally:
        runner.stop()


class Etcd:
    """A YAML document held at one etcd key, watched, with an ACK/NACK status per instance.

    After every reload attempt the instance writes its status as JSON to
    `{status_prefix}/{instance}` under a lease it keeps alive (`instance`, `version`,
    `revision` the attempt was about, `applied_revision` live now, `outcome`, `rejected`
    paths, `errors`, `ts`); an instance that dies disappears when its lease expires.

    Args:
        endpoints: `"http://127.0.0.1:2379"`, comma-separated or a list for a cluster.
        key: the key holding the document, e.g. `/app/config`.
        instance: this instance's name in the fleet (default `hostname-pid`).
        status_prefix: where statuses go (default `{key}.status`).
        lease_ttl: seconds a dead instance's status outlives it.
        timeout: seconds for one etcd request.

    Origins read `etcd:KEY@REVISION:line:col`. A deleted key, or etcd going away, keeps
    the live config (with a warning); the watch reconnects with backoff and catches up.
    """

    def __init__(
        self,
        endpoints: str | Sequence[str],
        key: str,
        *,
        instance: str | None = None,
        status_prefix: str | None = None,
        lease_ttl: int = 10,
        timeout: float = 5.0,
    ) -> None:
        if not key:
            raise ValueError("an etcd key is required")
        if lease_ttl < 1:
            raise ValueError(f"lease_ttl must be at least 1 second, got {lease_ttl!r}")
        self.endpoints = parse_endpoints(endpoints)
        self.key = key
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}"
        self.status_prefix = (status_prefix or f"{key}.status").rstrip("/")
        self.status_key = f"{self.status_prefix}/{self.instance}"
        self.lease_ttl = int(lease_ttl)
        self.timeout = timeout
        self._runner_lock = threading.Lock()
        self._runner: _LoopThread | None = None
        # Loop-side state: touched only by coroutines on the runner's loop.
        self._client: Any = None
        self._endpoint = 0
        self._seen = 0  # highest store revision read or watched: the watch resumes after it
        # The latest (value or None for a delete, revision) the connected watch delivered;
        # one reference, assigned on the loop thread, read by load().
        self._pushed: tuple[bytes | None, int] | None = None
        # Reloader-side state: touched by load() and report(), which the Reloader serializes.
        self._good: Layer | None = None  # the last document that parsed
        self._good_revision = 0
        self._attempt: int | None = None  # revision the current attempt read; None: fell back
        self._consumed = 0  # the newest revision load() has read, by request or from the watch
        self._applied = 0
        self._status: dict[str, Any] | None = None
        self._watch: _EtcdWatch | None = None

    @property
    def name(self) -> str:
        return f"etcd:{self.key}"

    def __repr__(self) -> str:
        return f"Etcd({_show(self.endpoints)!r}, {self.key!r}, instance={self.instance!r})"

    # --- the loop thread and its client -------------------------------------------------

    def _loop(self) -> _LoopThread:
        with self._runner_lock:
            if self._runner is None:
                self._runner = _LoopThread(f"selreload-etcd {self.key}")
            return self._runner

    async def _get_client(self) -> Any:
        if self._client is None:
            host, port = self.endpoints[self._endpoint % len(self.endpoints)]
            self._client = new_client(host, port, self.timeout)
        return self._client

    async def _drop_client(self, client: Any) -> None:
        """Forget a client that failed; the next request opens a fresh channel, on the next
        endpoint of a cluster."""
        if client is not None and client is self._client:
            self._client = None
            self._endpoint += 1
        if client is not None:
            try:
                await client.close()
            except Exception:  # closing a dead channel may fail; it is gone either way
                log.debug("etcd %s: closing a failed client", self.key, exc_info=True)

    # --- Source ---------------------------------------------------------------------------

    async def _read(self) -> tuple[bytes | None, int, int]:
        client = await self._get_client()
        try:
            got = await client.get_range(_bytes_key(self.key), _range_end(_bytes_key(self.key)))
        except client_errors():
            await self._drop_client(client)
            raise
        self._seen = max(self._seen, got.header.revision)
        if not got.kvs:
            return None, 0, got.header.revision
        kv = got.kvs[0]
        return bytes(kv.value), int(kv.mod_revision), int(got.header.revision)

    def load(self) -> Layer:
        """Read the document now and remember the revision (for the status report).

        Raises:
            ConfigError: the document does not parse; or, before any document was read,
                the key is missing or etcd cannot be reached.
        """
        self._attempt = None
        pushed = self._pushed
        try:
            if pushed is not None and pushed[1] > self._consumed:
                # The watch delivered a newer value than the last read: use it, saving a
                # round trip per instance per put (a later put is a later event anyway).
                value, revision = pushed
                self._consumed = revision
            else:
                value, revision, header = self._loop().call(self._read(), self.timeout + 1.0)
                self._consumed = max(self._consumed, header)
        except client_errors() as exc:
            if self._good is not None:
                log.warning(
                    "etcd %s at %s unreachable (%s): keeping the config from revision %d",
                    self.key,
                    _show(self.endpoints),
                    exc,
                    self._good_revision,
                )
                return self._good
            msg = f"cannot read from etcd at {_show(self.endpoints)}: {exc}"
            raise ConfigError([Issue("", msg, self.name)]) from None
        if value is None:
            if self._good is not None:
                log.warning(
                    "etcd key %s was deleted: keeping the config from revision %d", self.key, self._good_revision
                )
                return self._good
            raise ConfigError([Issue("", f"etcd key does not exist (at {_show(self.endpoints)})", self.name)])
        self._attempt = revision
        # The revision is part of the identity: every revision gets its own ACK or NACK,
        # even one that writes the same bytes again.
        digest = f"{hashlib.sha256(value).hexdigest()}@{revision}"
        if self._good is not None and self._good.digest == digest:
            return self._good
        layer = parse_document(f"{self.name}@{revision}", value, digest)
        self._good, self._good_revision = layer, revision
        return layer

    def watch(self, notify: Callable[[str], None]) -> Watcher | None:
        """Watch the key from the last revision read (or from now, before any read) and
        keep this instance's status alive until `stop()`."""
        if self._watch is not None:
            self._watch.stop()
        self._watch = _EtcdWatch(self, notify)
        return self._watch

    # --- Reporter -------------------------------------------------------------------------

    def report(self, result: ReloadResult, snapshot: Snapshot[Any]) -> None:
        """Record the ACK (applied, unchanged, rejected) or NACK of the revision read."""
        previous = self._status
        revision = self._attempt
        if revision is None:  # fell back to the last document: nothing new from etcd
            revision = previous["revision"] if previous else self._good_revision
        if result.outcome is Outcome.UNCHANGED and previous is not None and previous["revision"] == revision:
            return  # the same revision again (a coalesced event): the last status still holds
        acked = result.outcome in _ACK
        if acked and self._attempt is not None:
            self._applied = revision
        # A NACK leaves the live config, and so its pending restart, as it was.
        rejected = [c.path for c in result.rejected] if acked or previous is None else previous["rejected"]
        self._status = {
            "instance": self.instance,
            "version": result.version,
            "revision": revision,
            "applied_revision": self._applied,
            "outcome": result.outcome.value,
            "rejected": rejected,
            "errors": [str(e) for e in result.errors],
            "ts": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
        }
        watch = self._watch
        if watch is not None:
            watch.publish()

    def close(self) -> None:
        """Stop the watch, if any, and the loop thread (a later `load()` starts a new one)."""
        if self._watch is not None:
            self._watch.stop()
        with self._runner_lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.call(self._close_client(), self.timeout)
            runner.stop()

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


class _Backoff:
    """Exponential backoff with jitter, so a fleet does not reconnect in lockstep."""

    def __init__(self) -> None:
        self.delay = _BACKOFF_MIN_S

    def reset(self) -> None:
        self.delay = _BACKOFF_MIN_S

    def next(self) -> float:
        delay = self.delay * random.uniform(0.5, 1.0)
        self.delay = min(self.delay * 2, _BACKOFF_MAX_S)
        return delay


class _LeaseLost(Exception):
    """etcd no longer knows the lease (it expired while we were away)."""


class _EtcdWatch:
    """A running watch of one `Etcd` source, with the lease that keeps its status alive."""

    def __init__(self, source: Etcd, notify: Callable[[str], None]) -> None:
        self._source = source
        self._notify = notify
        self._closing = False
        self._wake = threading.Event()
        self._dispatcher = threading.Thread(target=self._dispatch, name=f"selreload-etcd-notify {source.key}")
        self._dispatcher.daemon = True
        self._runner = source._loop()
        self._status_ready: asyncio.Event | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._lease: int | None = None
        self._dispatcher.start()
        self._task = self._runner.submit(self._supervise())

    def __repr__(self) -> str:
        return f"<EtcdWatch {self._source.key} as {self._source.instance}>"

    # --- the sync side --------------------------------------------------------------------

    def _dispatch(self) -> None:
        while True:
            self._wake.wait()
            if self._closing:
                return
            self._wake.clear()
            try:
                self._notify("etcd")
            except Exception:  # the dispatcher must outlive a failing callback
                log.exception("etcd %s: reload after a change failed", self._source.key)

    def publish(self) -> None:
        """Queue a write of the source's latest status (never blocks a reload)."""
        if self._closing:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us: stop() is under way
            self._runner.call_soon(self._status_changed)

    def stop(self) -> None:
        """Stop watching, revoke the lease (the status row goes at once), join the threads."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        # Join the dispatcher while the loop still runs: a reload in flight needs it. (Not
        # when an applier stops the Reloader from that very reload.)
        if threading.current_thread() is not self._dispatcher:
            self._dispatcher.join(self._source.timeout + 2.0)
        try:
            self._runner.call(self._shutdown(), self._source.timeout + 1.0)
        except Exception:  # etcd may be gone; the lease then just expires
            log.debug("etcd %s: shutdown", self._source.key, exc_info=True)
        source = self._source
        with source._runner_lock:
            if source._runner is self._runner:
                source._runner = None
        if source._watch is self:
            source._watch = None
        self._runner.stop()

    # --- the loop side ----------------------------------------------------------------------

    def _status_changed(self) -> None:
        if self._status_ready is not None:
            self._status_ready.set()

    async def _shutdown(self) -> None:
        task = self._supervisor
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        source = self._source
        client, lease = source._client, self._lease
        if client is not None and lease is not None:
            try:
                await asyncio.wait_for(client.revoke_lease(lease), source.timeout)
            except client_errors():
                log.debug("etcd %s: could not revoke lease %x", source.key, lease, exc_info=True)
        source._client = None
        if client is not None:
            await client.close()

    async def _supervise(self) -> None:
        source = self._source
        backoff = _Backoff()
        self._supervisor = asyncio.current_task()
        self._status_ready = asyncio.Event()
        attempts = 0
        while not self._closing:
            connected: list[bool] = []
            try:
                await self._session(catch_up=attempts > 0, connected=connected, backoff=backoff)
            except asyncio.CancelledError:
                if self._closing or self._supervisor is None or self._supervisor.cancelling():
                    raise
                # Not us being stopped: gRPC cancelled a call because a load() closed the
                # failed channel this session shared. That is a lost connection too.
                log.debug("etcd %s: session call cancelled by a closed channel", source.key)
                await source._drop_client(source._client)
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect, keeping the live config
                if self._closing:
                    return
                if connected:
                    log.warning("etcd %s: connection lost (%s); reconnecting", source.key, exc)
                else:
                    log.debug("etcd %s: cannot connect (%s)", source.key, exc)
                await source._drop_client(source._client)
            attempts += 1
            await asyncio.sleep(backoff.next())

    async def _session(self, *, catch_up: bool, connected: list[bool], backoff: _Backoff) -> None:
        source = self._source
        aetcd = _aetcd()
        client = await source._get_client()
        key = _bytes_key(source.key)
        if source._seen == 0:
            source._seen = (await client.get_range(key, _range_end(key))).header.revision
        try:
            events = await client.watch(key, start_revision=source._seen + 1)
        except aetcd.RevisionCompactedError:
            # History before the compaction is gone: read what etcd holds now instead.
            source._seen = (await client.get_range(key, _range_end(key))).header.revision
            events = await client.watch(key, start_revision=source._seen + 1)
            catch_up = True
        lease = await client.lease(source.lease_ttl)
        self._lease = lease.id
        connected.append(True)
        backoff.reset()
        if catch_up:
            # An event seen before the outage may have reached a reload that could not read
            # etcd any more: one reload now reads what etcd holds (UNCHANGED if nothing new).
            log.info("etcd %s: reconnected at revision %d", source.key, source._seen)
            self._wake.set()
        if source._status is not None and self._status_ready is not None:
            self._status_ready.set()  # the new lease needs the status written again
        tasks = [
            asyncio.ensure_future(self._events(events)),
            asyncio.ensure_future(self._keepalive(client, lease.id)),
            asyncio.ensure_future(self._write_status(client, lease.id)),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended the session
            raise ConnectionError("etcd watch ended")
        finally:
            source._pushed = None  # without a live watch, only a read is current
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _events(self, events: Any) -> None:
        source = self._source
        async for event in events:
            revision = int(event.kv.mod_revision)
            source._seen = max(source._seen, revision)
            source._pushed = (bytes(event.kv.value) if event.kind == "PUT" else None, revision)
            self._wake.set()

    async def _keepalive(self, client: Any, lease: int) -> None:
        while True:
            await asyncio.sleep(max(self._source.lease_ttl / 3.0, 0.2))
            reply = await client.refresh_lease(lease)
            if reply is None or reply.TTL <= 0:
                raise _LeaseLost(f"lease {lease:x} expired")

    async def _write_status(self, client: Any, lease: int) -> None:
        source = self._source
        ready = self._status_ready
        if ready is None:  # pragma: no cover - set before any session starts
            return
        while True:
            await ready.wait()
            ready.clear()
            status = source._status
            if status is not None:
                body = json.dumps(status, sort_keys=True).encode("utf-8")
                await client.put(_bytes_key(source.status_key), body, lease=lease)

"""etcd through aetcd from synchronous code: endpoints, a loop thread, and a `Session` per cluster."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")

log = logging.getLogger("selreload.etcd")

DEFAULT_PORT = 2379


def _aetcd() -> Any:
    from ._package import need

    return need("aetcd", feature="etcd (sr.Etcd, fleet status, push)")


def require_client() -> None:
    """Raise `MissingExtraError` (an ImportError) now when aetcd is not installed."""
    _aetcd()


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


def show_endpoints(endpoints: Sequence[tuple[str, int]]) -> str:
    """`((host, port), ...)` as `host:port,[::1]:port` for messages."""
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in endpoints)


def _key(key: str) -> bytes:
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
    raise ConnectionError(f"cannot reach etcd at {show_endpoints(endpoints)}: {last}")


class LoopThread:
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
    runner = LoopThread("selreload-etcd-call")
    try:
        return runner.call(coro_fn(), timeout)
    finally:
        runner.stop()


class CompactedError(Exception):
    """The revision a watch asked to start from is compacted away."""


class KeyEvent(NamedTuple):
    """One change of a watched key: its new value (`None`: deleted) and `mod_revision`."""

    value: bytes | None
    revision: int


class Session:
    """One cluster's client, opened on first use and replaced, on the next endpoint, when it
    fails. Use it from coroutines on one event loop only: the client is bound to that loop.

    Attributes:
        revision: the highest store revision any read or watch has seen; a watch resumes
            after it (store revisions are cluster-wide, so one cursor serves every key).
    """

    def __init__(self, endpoints: Sequence[tuple[str, int]], *, timeout: float, name: str) -> None:
        self.endpoints = tuple(endpoints)
        self.timeout = timeout
        self.name = name
        self.revision = 0
        self._client: Any = None
        self._endpoint = 0

    def __repr__(self) -> str:
        return f"<Session {show_endpoints(self.endpoints)} for {self.name}>"

    @property
    def connected(self) -> bool:
        """A client is open (it may still turn out dead)."""
        return self._client is not None

    async def _connect(self) -> Any:
        if self._client is None:
            host, port = self.endpoints[self._endpoint % len(self.endpoints)]
            self._client = new_client(host, port, self.timeout)
        return self._client

    async def _drop(self, client: Any) -> None:
        # Only the client that failed: a concurrent call may already have opened a new one.
        if client is not None and client is self._client:
            self._client = None
            self._endpoint += 1
        if client is not None:
            try:
                await client.close()
            except Exception:  # closing a dead channel may fail; it is gone either way
                log.debug("etcd %s: closing a failed client", self.name, exc_info=True)

    async def _call(self, op: Callable[[Any], Awaitable[T]]) -> T:
        client = await self._connect()
        try:
            return await op(client)
        except client_errors():
            await self._drop(client)
            raise

    async def reconnect(self) -> None:
        """Forget the current client; the next call opens a fresh channel, on the next
        endpoint of a cluster."""
        await self._drop(self._client)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def get(self, key: str) -> tuple[bytes | None, int, int]:
        """`(value or None, mod_revision or 0, header revision)` of `key`."""
        raw = _key(key)
        got = await self._call(lambda c: c.get_range(raw, _range_end(raw)))
        self.revision = max(self.revision, int(got.header.revision))
        if not got.kvs:
            return None, 0, int(got.header.revision)
        kv = got.kvs[0]
        return bytes(kv.value), int(kv.mod_revision), int(got.header.revision)

    async def watch(self, key: str, *, start_revision: int) -> AsyncIterator[KeyEvent]:
        """The events of `key` from `start_revision` on; each advances `revision`.

        Raises:
            CompactedError: etcd no longer has the history from `start_revision`.
        """
        client = await self._connect()
        try:
            events = await client.watch(_key(key), start_revision=start_revision)
        except _aetcd().RevisionCompactedError:
            raise CompactedError(f"etcd {key}: revision {start_revision} is compacted") from None
        except client_errors():
            await self._drop(client)
            raise
        return self._events(events)

    async def _events(self, events: Any) -> AsyncIterator[KeyEvent]:
        async for event in events:
            revision = int(event.kv.mod_revision)
            self.revision = max(self.revision, revision)
            yield KeyEvent(bytes(event.kv.value) if event.kind == "PUT" else None, revision)

    async def grant(self, ttl: int) -> int:
        """A new lease of `ttl` seconds; returns its id."""
        lease = await self._call(lambda c: c.lease(ttl))
        return int(lease.id)

    async def refresh(self, lease: int) -> int:
        """Keep `lease` alive; returns its TTL left, 0 when etcd no longer knows it."""
        reply = await self._call(lambda c: c.refresh_lease(lease))
        return 0 if reply is None else max(int(reply.TTL), 0)

    async def revoke(self, lease: int) -> None:
        await self._call(lambda c: c.revoke_lease(lease))

    async def put(self, key: str, value: bytes, *, lease: int | None = None) -> None:
        await self._call(lambda c: c.put(_key(key), value, lease=lease))

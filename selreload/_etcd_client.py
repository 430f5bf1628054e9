"""etcd through aetcd from synchronous code: a `Channel` (one client) per cluster, a `Session` per user."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

from ._etcd_access import Access, parse_endpoints, show_endpoints
from ._etcd_lease import LeaseKeeper
from ._etcd_loop import LoopThread, run_sync, uninterrupted

T = TypeVar("T")

log = logging.getLogger("selreload.etcd")

__all__ = ["Access", "LoopThread", "parse_endpoints", "run_sync", "show_endpoints"]  # re-exported for the callers


def _aetcd() -> Any:
    from ._package import need

    return need("aetcd", feature="etcd (sr.Etcd, fleet status, push)")


def require() -> None:
    """Fail now, in one line, when the `etcd` extra is missing.

    Raises:
        ImportError: aetcd is not installed.
    """
    _aetcd()


@functools.cache
def _client_class() -> Any:
    aetcd = _aetcd()
    from aetcd import exceptions, rpc, watcher

    class TlsClient(aetcd.Client):  # type: ignore[misc,name-defined]
        """aetcd's client over a TLS channel when given credentials: aetcd 1.0 opens plain
        gRPC channels only, so `connect()` is aetcd's own with `secure_channel` in place of
        `insecure_channel`. Concurrent connects queue on a lock: in aetcd's, a caller waiting
        on a connect that fails (wrong password) waits out `connect_wait_timeout` instead
        of failing with it."""

        def __init__(self, *, credentials: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._credentials = credentials
            self._connect_lock = asyncio.Lock()

        async def connect(self) -> None:
            async with self._connect_lock:
                if self._connected.is_set():
                    return
                if self._credentials is None:
                    await super().connect()
                    return
                try:
                    await self._connect_tls()
                except rpc.AioRpcError as exc:
                    exceptions._handle_exception(exc)

        async def _connect_tls(self) -> None:
            try:
                self._is_connecting = True
                target = f"{self._host}:{self._port}"
                self.channel = rpc.secure_channel(target, self._credentials, options=self._options.items())
                if self._username is not None and self._password is not None:
                    self.auth_stub = rpc.AuthStub(self.channel)
                    request = rpc.AuthenticateRequest(name=self._username, password=self._password)
                    resp = await self.auth_stub.Authenticate(request, timeout=self._timeout)
                    self.metadata = (("token", resp.token),)
                self.kvstub = rpc.KVStub(self.channel)
                self.clusterstub = rpc.ClusterStub(self.channel)
                self.leasestub = rpc.LeaseStub(self.channel)
                self.maintenancestub = rpc.MaintenanceStub(self.channel)
                self._watcher = watcher.Watcher(
                    rpc.WatchStub(self.channel), timeout=self._timeout, metadata=self.metadata
                )
                self._connected.set()
            finally:
                self._is_connecting = False

    return TlsClient


def is_auth_expired(exc: BaseException) -> bool:
    """etcd refused the token (it expired, or etcd restarted): authenticating again helps."""
    from aetcd.exceptions import UnauthenticatedError

    return isinstance(exc, UnauthenticatedError) or "invalid auth token" in str(exc)


def _key(key: str) -> bytes:
    return key.encode("utf-8")


def _range_end(key: bytes) -> bytes:
    # [key, key + "\0") is the one key: unlike get(), a range read returns the header
    # revision even when the key is missing.
    return key + b"\0"


def client_errors() -> tuple[type[BaseException], ...]:
    """What a dead, restarting or unreachable etcd raises through aetcd."""
    return (_aetcd().ClientError, OSError, TimeoutError)


def new_client(access: Access, host: str, port: int, timeout: float) -> Any:
    """An aetcd client; channels reconnect fast because etcd restarts are expected."""
    options: dict[str, Any] = {"grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 1000}
    if access.server_name:
        options["grpc.ssl_target_name_override"] = access.server_name
    return _client_class()(
        credentials=access.credentials(),
        host=host,
        port=port,
        username=access.user,
        password=access.password,
        timeout=timeout,
        options=options,
    )


def first_line(exc: BaseException) -> str:
    """The first line of what etcd or gRPC said (their details can span lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


async def with_client(access: Access, timeout: float, op: Callable[[Any], Awaitable[T]]) -> T:
    """Run `op(client)` against the first endpoint that answers.

    Raises:
        ConnectionError: no endpoint answered, or etcd refused the credentials (one line).
    """
    errors = client_errors()
    last: BaseException | None = None
    for host, port in access.hosts:
        client = new_client(access, host, port, timeout)
        try:
            return await op(client)
        except errors as exc:
            last = exc
        finally:
            await client.close()
    raise ConnectionError(f"cannot reach etcd at {access}: {first_line(last) if last else 'no endpoint'}")


class CompactedError(Exception):
    """The revision a watch asked to start from is compacted away."""


class KeyEvent(NamedTuple):
    """One change of a watched key: its new value (`None`: deleted) and `mod_revision`."""

    value: bytes | None
    revision: int


class KeyWatch:
    """One watch on a (possibly shared) channel: an async iterator of `KeyEvent`s; each
    advances its session's `revision`. `aclose()` cancels it in etcd."""

    def __init__(self, session: Session, events: Any) -> None:
        self._session = session
        self._events = events
        self._iterator: Any = None

    def __aiter__(self) -> KeyWatch:
        return self

    async def __anext__(self) -> KeyEvent:
        if self._iterator is None:
            self._iterator = aiter(self._events)
        event = await anext(self._iterator)
        kv = event.kv
        revision = kv.mod_revision
        session = self._session
        if revision > session.revision:
            session.revision = revision
        return KeyEvent(kv.value if event.kind == "PUT" else None, revision)

    async def aclose(self) -> None:
        """Cancel the watch in etcd; bounded, and quiet when the stream is gone already
        (aetcd has then forgotten the watch)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._events.cancel(), self._session.timeout)


class Channel:
    """One aetcd client to one cluster, opened on first use and replaced, on the next
    endpoint, when a call through it fails. Sessions share it (`selreload._etcd_shared`):
    many watches multiplex over its one gRPC connection and watch stream. Use it from
    coroutines on one event loop only: the client is bound to that loop."""

    def __init__(self, access: Access, *, timeout: float, name: str) -> None:
        self.access = access
        self.endpoints = access.hosts
        self.timeout = timeout
        self.name = name
        self.client: Any = None
        self._endpoint = 0
        self._keeper: tuple[Any, LeaseKeeper] | None = None

    def open(self) -> Any:
        """The current client, a new one (not yet connected) when there is none."""
        if self.client is None:
            host, port = self.endpoints[self._endpoint % len(self.endpoints)]
            self.client = new_client(self.access, host, port, self.timeout)
        return self.client

    async def drop(self, client: Any) -> None:
        """Close `client` after a failure; the next `open()` tries the next endpoint."""
        # Only the client that failed: another session may already have opened a new one,
        # and dropping that too would make every session of the channel reconnect again.
        if client is not None and client is self.client:
            self.client = None
            self._endpoint += 1
        if client is not None:
            try:
                await self._close_keeper(client)
                await client.close()
            except Exception:  # closing a dead channel may fail; it is gone either way
                log.debug("etcd %s: closing a failed client", self.name, exc_info=True)

    def keeper(self, client: Any) -> LeaseKeeper:
        """The keepalive stream through `client` (the current one, or one that just failed)."""
        if self._keeper is None or self._keeper[0] is not client:
            self._keeper = (client, LeaseKeeper(client, timeout=self.timeout))
        return self._keeper[1]

    async def _close_keeper(self, client: Any) -> None:
        if self._keeper is not None and self._keeper[0] is client:
            keeper, self._keeper = self._keeper[1], None
            await keeper.close()

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await self._close_keeper(client)
            await client.close()


class Session:
    """The calls one user (a source, a rollout) makes through a `Channel`: its own or a
    shared one. Use it from coroutines on the channel's event loop only.

    Attributes:
        revision: the highest store revision this session's reads and watches have seen;
            its watch resumes after it. Per session, not per channel: another session's
            events on another key say nothing about what this one's watch delivered.
    """

    def __init__(self, access: Access, *, timeout: float, name: str, channel: Channel | None = None) -> None:
        self.access = access
        self.timeout = timeout
        self.name = name
        self.revision = 0
        self._channel = channel if channel is not None else Channel(access, timeout=timeout, name=name)
        self._owns = channel is None
        self._used: Any = None  # the client this session's last call went through

    def __repr__(self) -> str:
        return f"<Session {self.access} for {self.name}>"

    def bind(self, channel: Channel) -> None:
        """Go through `channel` (shared, owned by someone else) from now on."""
        self._channel, self._owns, self._used = channel, False, None

    @property
    def connected(self) -> bool:
        """A client is open (it may still turn out dead)."""
        return self._channel.client is not None

    async def _connect(self) -> Any:
        self._used = client = self._channel.open()
        return client

    async def _drop(self, client: Any) -> None:
        await self._channel.drop(client)

    async def _call(self, op: Callable[[Any], Awaitable[T]]) -> T:
        client = await self._connect()
        try:
            return await op(client)
        except client_errors() as exc:
            await self._drop(client)
            if self.access.user is None or not is_auth_expired(exc):
                raise
        # The token expired (etcd's --auth-token-ttl, or a restart): a new client
        # authenticates again. Once: wrong credentials fail the same way the second time.
        log.debug("etcd %s: auth token refused; authenticating again", self.name)
        client = await self._connect()
        try:
            return await op(client)
        except client_errors():
            await self._drop(client)
            raise

    async def reconnect(self) -> None:
        """Forget the client this session last used (unless another session already
        replaced it); the next call opens a fresh one, on the next endpoint of a cluster."""
        await self._drop(self._used)

    async def close(self) -> None:
        """Close the channel if this session owns it (a shared one closes with its last user)."""
        if self._owns:
            await self._channel.close()

    async def get(self, key: str) -> tuple[bytes | None, int, int]:
        """`(value or None, mod_revision or 0, header revision)` of `key`."""
        raw = _key(key)
        got = await self._call(lambda c: c.get_range(raw, _range_end(raw)))
        self.revision = max(self.revision, int(got.header.revision))
        if not got.kvs:
            return None, 0, int(got.header.revision)
        kv = got.kvs[0]
        return bytes(kv.value), int(kv.mod_revision), int(got.header.revision)

    async def read(self, keys: tuple[str, ...]) -> tuple[dict[str, tuple[bytes, int]], int]:
        """`{key: (value, mod_revision)}` of those of `keys` that exist, read at one revision
        (one transaction), and that header revision."""
        raws = [_key(k) for k in keys]

        async def op(c: Any) -> tuple[dict[str, tuple[bytes, int]], int]:
            t = c.transactions
            _, replies = await c.transaction(compare=[], success=[t.get(r, _range_end(r)) for r in raws], failure=[])
            found = {
                k: (bytes(got[0][0]), int(got[0][1].mod_revision)) for k, got in zip(keys, replies, strict=False) if got
            }
            headers = [int(got[0][1].header.revision) for got in replies if got]
            if headers:
                return found, headers[0]
            # aetcd hands the header out only with a key: none exists, so ask for it.
            empty = await c.get_range(raws[0], _range_end(raws[0]))
            return found, int(empty.header.revision)

        found, header = await self._call(op)
        self.revision = max(self.revision, header)
        return found, header

    async def txn(self, compare: Callable[[Any], list[Any]], success: Callable[[Any], list[Any]]) -> bool:
        """One transaction: `success(t)` if every `compare(t)` holds (`t`: aetcd's
        `client.transactions`); returns whether it did."""

        async def op(c: Any) -> bool:
            t = c.transactions
            ok, _ = await c.transaction(compare=compare(t), success=success(t), failure=[])
            return bool(ok)

        return await self._call(op)

    async def prefix(self, prefix: str) -> list[tuple[str, bytes]]:
        """Every `(key, value)` under `prefix`."""
        got = await self._call(lambda c: c.get_prefix(_key(prefix)))
        return [(kv.key.decode("utf-8", "replace"), bytes(kv.value)) for kv in got]

    async def delete(self, key: str) -> None:
        await self._call(lambda c: c.delete(_key(key)))

    async def watch(self, key: str, *, start_revision: int) -> KeyWatch:
        """A watch of `key` from `start_revision` on: iterate it for the events (each
        advances `revision`), and `cancel()` it when done. On a shared channel the watch
        lives as long as the channel unless cancelled.

        Raises:
            CompactedError: etcd no longer has the history from `start_revision`.
        """
        client = await self._connect()
        try:
            events = await uninterrupted(client.watch(_key(key), start_revision=start_revision), lambda e: e.cancel())
        except _aetcd().RevisionCompactedError:
            raise CompactedError(f"etcd {key}: revision {start_revision} is compacted") from None
        except client_errors():
            await self._drop(client)
            raise
        return KeyWatch(self, events)

    async def grant(self, ttl: int) -> int:
        """A new lease of `ttl` seconds; returns its id."""
        lease = await self._call(lambda c: c.lease(ttl))
        return int(lease.id)

    async def refresh(self, lease: int) -> int:
        """Keep `lease` alive; returns its TTL left, 0 when etcd no longer knows it. Over
        the channel's one keepalive stream (`_etcd_lease`), however many sessions share it."""
        return await self._call(lambda c: self._channel.keeper(c).refresh(lease))

    async def revoke(self, lease: int) -> None:
        await self._call(lambda c: c.revoke_lease(lease))

    async def put(self, key: str, value: bytes, *, lease: int | None = None) -> None:
        await self._call(lambda c: c.put(_key(key), value, lease=lease))

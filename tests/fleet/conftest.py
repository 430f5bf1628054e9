"""Fixtures for the fleet tests: one real etcd per session, and helpers to read and write it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import selreload as sr
from selreload._etcd_access import Access, access
from selreload._etcd_client import run_sync, with_client

from .etcd_server import INSTALL_HINT, Certs, EtcdServer
from .worker import App


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """A real etcd on 127.0.0.1 (random ports, temp data dir), stopped by PID at the end.

    Missing etcd skips with the install hint, except under CI=true where it fails."""
    binary = shutil.which("etcd")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    server = EtcdServer(binary, tmp_path_factory.mktemp("etcd") / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Kv:
    """Plain reads and writes against the test etcd, the way an operator's tool makes them."""

    def __init__(self, endpoint: str | Access) -> None:
        self.hosts = access(endpoint, environ={})

    def _run(self, op: Any) -> Any:
        return run_sync(lambda: with_client(self.hosts, 5.0, op), 10.0)

    def put(self, key: str, value: str | bytes) -> int:
        """Put and return the new revision."""
        data = value.encode() if isinstance(value, str) else value

        async def op(c: Any) -> int:
            return int((await c.put(key.encode(), data)).header.revision)

        return int(self._run(op))

    def get(self, key: str) -> tuple[bytes, int] | None:
        """(value, mod_revision), or None for a missing key."""

        async def op(c: Any) -> tuple[bytes, int] | None:
            got = await c.get(key.encode())
            return (bytes(got.value), int(got.mod_revision)) if got is not None else None

        result: tuple[bytes, int] | None = self._run(op)
        return result

    def delete(self, key: str) -> None:
        async def op(c: Any) -> None:
            await c.delete(key.encode())

        self._run(op)

    def prefix(self, prefix: str) -> dict[str, bytes]:
        """{key: value} of every key under `prefix`."""

        async def op(c: Any) -> dict[str, bytes]:
            return {kv.key.decode(): bytes(kv.value) for kv in await c.get_prefix(prefix.encode())}

        result: dict[str, bytes] = self._run(op)
        return result


@pytest.fixture
def kv(etcd: EtcdServer) -> Kv:
    """Raw access to the session's etcd."""
    return Kv(etcd.endpoint)


@pytest.fixture
def key() -> str:
    """A key no other test uses."""
    return f"/test/{uuid.uuid4().hex[:12]}/config"


BASE = "server:\n  port: 8080\nlevel: info\nlimit: 1\n"


@pytest.fixture
def started(etcd: EtcdServer, kv: Kv, key: str) -> Iterator[sr.Reloader[App]]:
    """A Reloader on `sr.Etcd` (instance `solo`), started on BASE."""
    kv.put(key, BASE)
    reloader = sr.Reloader(App, [sr.Etcd(etcd.endpoint, key, instance="solo", lease_ttl=2)])
    reloader.start()
    try:
        yield reloader
    finally:
        reloader.stop()


ROOT_PASSWORD = "r00t-s3cret"


@pytest.fixture(scope="session")
def secure_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """A real etcd speaking TLS only (client certificates required), with authentication
    enabled (user `root`, password `ROOT_PASSWORD`) and 2-second auth tokens."""
    binary = shutil.which("etcd")
    if binary is None or shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT + " (and openssl)")
        pytest.skip(INSTALL_HINT + " (and openssl)")
    where = tmp_path_factory.mktemp("etcd-tls")
    server = EtcdServer(binary, where / "data", tls=Certs(where), token_ttl=2)
    server.start()
    try:
        enable_auth(secure_access(server, user=None))
        yield server
    finally:
        server.stop()


def secure_access(server: EtcdServer, *, user: str | None = "root", password: str = ROOT_PASSWORD) -> Access:
    certs = server.tls
    assert certs is not None
    return access(
        server.endpoint,
        ca_cert=str(certs.ca),
        client_cert=str(certs.client_cert),
        client_key=str(certs.client_key),
        user=user,
        password=password if user else None,
        environ={},
    )


def enable_auth(where: Access) -> None:
    """`etcdctl user add root && etcdctl auth enable`, through the gRPC auth API."""
    from aetcd import rpc

    async def op(c: Any) -> None:
        await c.connect()
        stub = rpc.AuthStub(c.channel)
        await stub.UserAdd(rpc.AuthUserAddRequest(name="root", password=ROOT_PASSWORD))
        await stub.UserGrantRole(rpc.AuthUserGrantRoleRequest(user="root", role="root"))
        await stub.AuthEnable(rpc.AuthEnableRequest())

    run_sync(lambda: with_client(where, 5.0, op), 10.0)

"""An asyncio service that reconfigures its HTTP client live: FastAPI lifespan, an async
applier that swaps an `httpx.AsyncClient` safely, and the admin app.

Run it (from the repository root):

    SELRELOAD_EXAMPLE_CONFIG=upstream.yaml uvicorn examples.fastapi_async:app --host 127.0.0.1

`upstream.yaml` holds `upstream: {base_url: ..., timeout: 5s, max_connections: 10}`; edit it
while the service runs and `GET /upstream` shows the new client at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
import httpx
from fastapi import FastAPI

import selreload as sr
from selreload.asgi import PinMiddleware, admin_app


@sr.config
class Upstream:
    base_url: str = "http://127.0.0.1:9"
    timeout: datetime.timedelta = datetime.timedelta(seconds=5)
    max_connections: int = attrs.field(default=10, validator=attrs.validators.ge(1))


@sr.config
class Settings:
    upstream: Upstream = sr.hot(factory=Upstream)


class ClientSwap:
    """Keeps the app's `httpx.AsyncClient` in step with `upstream.*`, on the app's loop.

    apply: build the new client and make it current (the old one keeps serving the
    requests that already hold it). rollback: make the old one current again and close
    the new one. After the commit, `retire()` closes the old client once its in-flight
    requests are done, so nothing is cut mid-request and nothing leaks.
    """

    name = "upstream-client"

    def __init__(self) -> None:
        self.client: httpx.AsyncClient | None = None
        self._previous: httpx.AsyncClient | None = None
        self._in_flight: dict[int, int] = {}
        self._idle = asyncio.Condition()

    def _build(self, upstream: Upstream) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=upstream.base_url,
            timeout=upstream.timeout.total_seconds(),
            limits=httpx.Limits(max_connections=upstream.max_connections),
        )

    async def apply(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Settings]) -> None:
        self._previous, self.client = self.client, self._build(snapshot.config.upstream)

    async def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Settings]) -> None:
        new, self.client = self.client, self._previous
        self._previous = None
        if new is not None:
            await new.aclose()

    async def retire(self, result: sr.ReloadResult) -> None:
        """Subscriber: after a commit, close the client it replaced once it is idle."""
        old, self._previous = self._previous, None
        if old is None:
            return
        async with self._idle:
            await self._idle.wait_for(lambda: self._in_flight.get(id(old), 0) == 0)
        await old.aclose()

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[httpx.AsyncClient]:
        """The current client, held for one request (it is not closed under it)."""
        client = self.client
        if client is None:
            raise RuntimeError("the client is not configured yet")
        self._in_flight[id(client)] = self._in_flight.get(id(client), 0) + 1
        try:
            yield client
        finally:
            async with self._idle:
                self._in_flight[id(client)] -= 1
                self._idle.notify_all()


def create_app(config_path: str, *, token: str) -> tuple[FastAPI, sr.Reloader[Settings], ClientSwap]:
    reloader = sr.Reloader(Settings, sources=[sr.YamlFile(config_path)], name="fastapi-async")
    swap = ClientSwap()
    reloader.on("upstream", swap)
    reloader.subscribe(swap.retire)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with reloader:  # astart(): async appliers run on this loop
            yield

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(PinMiddleware, reloader=reloader)
    app.mount("/admin", admin_app(reloader, token=token))

    @app.get("/upstream")
    async def upstream() -> dict[str, Any]:
        async with swap.use() as client:
            return {
                "base_url": str(client.base_url),
                "timeout": client.timeout.read,
                "version": reloader.snapshot.version if reloader.snapshot else None,
            }

    return app, reloader, swap


def _app_from_env() -> FastAPI:
    path = os.environ.get("SELRELOAD_EXAMPLE_CONFIG")
    if not path:
        raise RuntimeError("set SELRELOAD_EXAMPLE_CONFIG to the config file to serve")
    return create_app(path, token=os.environ.get("SELRELOAD_ADMIN_TOKEN", os.urandom(16).hex()))[0]


def __getattr__(name: str) -> Any:
    # `uvicorn examples.fastapi_async:app` builds the app on first access, from the environment.
    if name == "app":
        return _app_from_env()
    raise AttributeError(name)

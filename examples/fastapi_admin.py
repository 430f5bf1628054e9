"""A FastAPI service with live config: admin endpoints under /admin, one snapshot per request.

Run it (from the repository root):

    SELRELOAD_ADMIN_TOKEN=s3cret .venv/bin/python examples/fastapi_admin.py

then edit `fastapi-example/config.yaml` and `curl localhost:8001/items`.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import attrs
from fastapi import Depends, FastAPI, Request

import selreload as sr
from selreload.asgi import PinMiddleware, admin_app


@sr.config
class Settings:
    greeting: str = sr.hot(default="hello")
    page_size: int = sr.hot(default=10, validator=attrs.validators.ge(1))
    port: int = sr.restart_only(default=8001)
    api_key: str = sr.secret(default="")


def pinned_settings(request: Request) -> Settings:
    """The config pinned for this request by PinMiddleware: the same snapshot from the
    first line of the handler to the last, whatever reloads happen meanwhile."""
    reloader: sr.Reloader[Settings] = request.app.state.reloader
    return reloader.pinned()


SettingsDep = Annotated[Settings, Depends(pinned_settings)]


def create_app(config_path: str | os.PathLike[str], *, token: str, audit_path: str | None = None) -> FastAPI:
    """The service: a Reloader started with the app, PinMiddleware, and the admin app."""
    audit = sr.AuditLog(audit_path) if audit_path else None
    reloader = sr.Reloader(Settings, sources=[sr.YamlFile(config_path)], audit=audit, name="fastapi-example")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with reloader:  # load, validate and watch for as long as the app runs
            yield

    app = FastAPI(lifespan=lifespan)
    app.state.reloader = reloader
    app.add_middleware(PinMiddleware, reloader=reloader)
    app.mount("/admin", admin_app(reloader, token=token))

    @app.get("/items")
    def items(settings: SettingsDep) -> dict[str, Any]:
        return {"greeting": settings.greeting, "items": list(range(settings.page_size))}

    return app


if __name__ == "__main__":
    import uvicorn

    config = pathlib.Path("fastapi-example/config.yaml")
    if not config.exists():
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text("greeting: hello\npage_size: 3\nport: 8001\napi_key: change-me\n")
    app = create_app(config, token=os.environ["SELRELOAD_ADMIN_TOKEN"], audit_path=str(config.parent / "audit.jsonl"))
    uvicorn.run(app, host="127.0.0.1", port=8001)

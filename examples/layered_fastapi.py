"""Layered config (defaults, production overrides, `APP_` variables) behind FastAPI.

Layers, lowest precedence first: `config/default.yaml`, `config/production.yaml` (optional),
then `APP_*` environment variables (`APP_SERVER__PORT=8443`, `APP_PAGE_SIZE=50`). The
schema checks ranges and choices, and every error names its layer: `file:line:col` for
YAML, `env:APP_SERVER__PORT` for a variable. `GET /settings` and `GET /feature/{name}`
read the live config through a per-request pin (`PinMiddleware` + `reloader.pinned()`),
so one request sees one snapshot from start to end.

    python examples/layered_fastapi.py [DIR]     # scripted run with an in-process HTTP client
    python examples/layered_fastapi.py DIR --serve --port 8000   # serve it with uvicorn
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pathlib
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import httpx
from fastapi import FastAPI, HTTPException

import selreload as sr
from selreload.asgi import PinMiddleware

LEVELS = ("debug", "info", "warning", "error")


@sr.config
class Server:
    host: str = "127.0.0.1"
    # Unprivileged ports only: the service never runs as root.
    port: int = sr.field(default=8000, validator=[attrs.validators.ge(1024), attrs.validators.le(65535)])


@sr.config
class Settings:
    environment: str = sr.restart_only(
        default="development", validator=attrs.validators.in_(("development", "staging", "production"))
    )
    server: Server = sr.restart_only(factory=Server)
    log_level: str = sr.hot(default="info", validator=attrs.validators.in_(LEVELS))
    page_size: int = sr.hot(default=20, validator=[attrs.validators.ge(1), attrs.validators.le(500)])
    feature_flags: dict[str, bool] = sr.hot(factory=dict)


DEFAULT_YAML = """\
environment: development
server: {host: 127.0.0.1, port: 8000}
log_level: info
page_size: 20
feature_flags: {new_checkout: false, dark_mode: false}
"""
PRODUCTION_YAML = """\
environment: production
server: {port: 8443}
log_level: warning
feature_flags: {new_checkout: true}
"""


def sources(directory: pathlib.Path, environ: Mapping[str, str] | None = None) -> list[Any]:
    """The three layers (`sr.layered(directory, env="production")` builds the same list)."""
    return [
        sr.YamlFile(directory / "default.yaml", watch=False),
        sr.YamlFile(directory / "production.yaml", required=False, watch=False),
        sr.Env(prefix="APP_", environ=environ),
    ]


def create_app(reloader: sr.Reloader[Settings]) -> FastAPI:
    """The HTTP app: every endpoint reads `reloader.pinned()`, the request's snapshot."""
    app = FastAPI(title="layered settings")
    app.add_middleware(PinMiddleware, reloader=reloader)

    @app.get("/settings")
    def settings() -> dict[str, Any]:
        cfg = reloader.pinned()
        return {
            "environment": cfg.environment,
            "server": {"host": cfg.server.host, "port": cfg.server.port},
            "log_level": cfg.log_level,
            "page_size": cfg.page_size,
            "feature_flags": dict(cfg.feature_flags),
            "version": reloader.snapshot.version if reloader.snapshot else None,
        }

    @app.get("/feature/{name}")
    def feature(name: str) -> dict[str, Any]:
        flags = reloader.pinned().feature_flags
        if name not in flags:
            raise HTTPException(status_code=404, detail=f"no feature flag {name!r}")
        return {"name": name, "enabled": flags[name]}

    return app


def write_config(directory: pathlib.Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "default.yaml").write_text(DEFAULT_YAML, encoding="utf-8")
    (directory / "production.yaml").write_text(PRODUCTION_YAML, encoding="utf-8")


def run(directory: pathlib.Path, *, say: Callable[[str], None] = print) -> list[tuple[str, Any]]:
    """A scripted session against the real ASGI app: read, change a file, break it, break an env var."""
    return asyncio.run(_session(directory, say))


async def _session(directory: pathlib.Path, say: Callable[[str], None]) -> list[tuple[str, Any]]:
    config_dir = directory / "config"
    write_config(config_dir)
    production = config_dir / "production.yaml"
    environ = {"APP_PAGE_SIZE": "50"}
    reloader = sr.Reloader(Settings, sources(config_dir, environ), name="layered")
    log: list[tuple[str, Any]] = []
    transport = httpx.ASGITransport(app=create_app(reloader))
    with reloader:
        async with httpx.AsyncClient(transport=transport, base_url="http://layered.test") as client:

            async def get(url: str) -> None:
                response = await client.get(url)
                log.append((url, response.json()))
                say(f"GET {url} -> {response.status_code} {response.json()}")

            def reload(what: str) -> None:
                result = reloader.reload(trigger="edit")
                errors = "; ".join(map(str, result.errors))
                say(f"{what}: {result.outcome.value} {errors or list(result.applied) + list(result.rejected)}")

            await get("/settings")
            await get("/feature/new_checkout")

            edited = PRODUCTION_YAML.replace("{new_checkout: true}", "{new_checkout: false, dark_mode: true}")
            production.write_text(edited)
            reload("edit production.yaml")
            await get("/feature/dark_mode")

            production.write_text(edited.replace("log_level: warning", "log_level: verbose"))
            reload("bad choice in production.yaml")
            production.write_text(edited)
            environ["APP_SERVER__PORT"] = "80"
            reload("APP_SERVER__PORT=80")
            environ["APP_SERVER__PORT"] = "9443"
            reload("APP_SERVER__PORT=9443")
            await get("/settings")
    return log


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("directory", nargs="?", help="where config/ is written (default: a temporary directory)")
    parser.add_argument("--serve", action="store_true", help="serve with uvicorn instead of the scripted run")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.serve:
        import uvicorn

        config_dir = pathlib.Path(args.directory or ".") / "config"
        if not (config_dir / "default.yaml").exists():
            write_config(config_dir)
        reloader = sr.Reloader(Settings, sources(config_dir, os.environ), name="layered")
        with reloader:
            reloader.install_signal_handler()  # `kill -HUP <pid>` after editing the files
            uvicorn.run(create_app(reloader), host="127.0.0.1", port=args.port)
        return 0
    if args.directory:
        run(pathlib.Path(args.directory))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        run(pathlib.Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

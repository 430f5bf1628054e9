"""One config for every worker: the app the workers how-to (docs/workers.md) and its tests run.

    SELRELOAD_EXAMPLE_CONFIG=config.yaml SELRELOAD_STATE_DIR=/run/myapp \\
    SELRELOAD_ADMIN_TOKEN=s3cret uvicorn examples.workers:app --workers 3

    gunicorn -k uvicorn.workers.UvicornWorker -w 3 examples.workers:app   # add --preload: the same

`GET /value` answers the live `message` and the worker that served it; the admin app is
at `/admin`: `POST /admin/reload`, `POST /admin/rollback/{version or digest}` and
`POST /admin/overrides` act for every worker through the control directory.
`SELRELOAD_AUDIT_LOG` (optional) names one audit file all workers append to.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import selreload as sr
from selreload import appliers
from selreload.asgi import PinMiddleware, admin_app


@sr.config
class Logging:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning", "error"]))


@sr.config
class Settings:
    message: str = sr.hot(default="hello")
    logging: Logging = sr.field(factory=Logging)
    port: int = sr.restart_only(default=8000)


audit_path = os.environ.get("SELRELOAD_AUDIT_LOG")
reloader = sr.Reloader(
    Settings,
    sources=[sr.YamlFile(os.environ.get("SELRELOAD_EXAMPLE_CONFIG", "config.yaml"))],
    state_dir=os.environ.get("SELRELOAD_STATE_DIR", "selreload-state"),
    audit=sr.AuditLog(audit_path) if audit_path else None,
    name="workers-example",
)
reloader.on("logging.level", appliers.LogLevel("workers-example"))
# At import: in each worker, or with gunicorn --preload once in the master before it forks
# (each forked worker then restarts its watches and reports under its own pid).
reloader.start()


async def value(request: Request) -> JSONResponse:
    cfg = reloader.pinned()
    return JSONResponse({"message": cfg.message, "instance": reloader.instance})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    reloader.stop()  # a clean exit removes this worker's report; a kill leaves it, seen dead


app = Starlette(
    routes=[
        Route("/value", value),
        Mount("/admin", admin_app(reloader, token=os.environ.get("SELRELOAD_ADMIN_TOKEN", "change-me"))),
    ],
    lifespan=lifespan,
)
app.add_middleware(PinMiddleware, reloader=reloader)

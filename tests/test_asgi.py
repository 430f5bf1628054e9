"""The admin HTTP app and PinMiddleware, through a real HTTP client against the real app."""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import json
import pathlib
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import httpx
import pytest
from conftest import write_atomic
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

import selreload as sr
from selreload._audit import AuditLog, read_audit
from selreload.asgi import PinMiddleware, admin_app

pytestmark = pytest.mark.anyio

TOKEN = "correct-horse-battery-staple"
SECRET = "hunter2-do-not-show"


@sr.config
class Log:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning"]))


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    log: Log = sr.field(factory=Log)
    ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(minutes=15))
    api_key: str = sr.secret(default="")


def config_text(level: str = "info", port: int = 8080) -> str:
    return f"port: {port}\nlog:\n  level: {level}\nttl: 15m\napi_key: {SECRET}\n"


@pytest.fixture
def setup(tmp_path: pathlib.Path) -> Iterator[tuple[sr.Reloader[App], pathlib.Path, pathlib.Path]]:
    cfg = tmp_path / "config.yaml"
    write_atomic(cfg, config_text())
    audit = tmp_path / "audit.jsonl"
    # Not watched: HTTP is the only trigger here, so no watcher applies an edit before the
    # request under test does.
    reloader = sr.Reloader(
        App, sources=[sr.YamlFile(cfg, watch=False)], audit=AuditLog(audit), registry=CollectorRegistry(), name="web"
    )
    with reloader:
        yield reloader, cfg, audit


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextlib.asynccontextmanager
async def http(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """A real HTTP client speaking to the app in-process; the caller is 127.0.0.1."""
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture
async def client(setup: tuple[sr.Reloader[App], pathlib.Path, pathlib.Path]) -> AsyncIterator[httpx.AsyncClient]:
    async with http(admin_app(setup[0], token=TOKEN)) as c:
        yield c


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_get_config_is_masked_and_versioned(client: httpx.AsyncClient) -> None:
    """GET /config returns the live config as JSON with its version; secrets are `***`."""
    r = await client.get("/config")
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == 1
    assert body["config"] == {"port": 8080, "log": {"level": "info"}, "ttl": "15m", "api_key": "***"}
    assert SECRET not in r.text


async def test_status_and_history(client: httpx.AsyncClient) -> None:
    """GET /status is reloader.status(); GET /history lists the kept snapshots."""
    status = (await client.get("/status")).json()
    assert status["version"] == 1 and status["healthy"] is True and status["last_outcome"] == "applied"
    history = (await client.get("/history")).json()
    assert [h["version"] for h in history] == [1]
    assert len(history[0]["digest"]) == 64


async def test_status_keeps_error_texts_behind_the_token(
    setup: tuple[sr.Reloader[App], pathlib.Path, pathlib.Path], client: httpx.AsyncClient
) -> None:
    """Without a token GET /status answers the health fields and names what it withholds;
    the error texts (`last_error`, `unhealthy_reasons`) need the token; a wrong token is
    refused (403, audited) rather than quietly answered."""
    reloader, cfg, audit = setup
    write_atomic(cfg, config_text(level="loud"))
    assert reloader.reload().outcome is sr.Outcome.INVALID
    assert "loud" in reloader.status()["last_error"]

    public = await client.get("/status")
    assert public.status_code == 200
    body = public.json()
    assert "last_error" not in body and "unhealthy_reasons" not in body and "loud" not in public.text
    assert body["withheld"] == ["last_error", "unhealthy_reasons"]
    assert body["version"] == 1 and body["healthy"] is True and body["last_outcome"] == "invalid"
    assert body["restart_pending"] == [] and body["name"] == "web"

    full = await client.get("/status", headers=auth())
    assert full.status_code == 200 and full.json() == reloader.status()

    wrong = await client.get("/status", headers=auth("not-the-token"))
    assert wrong.status_code == 403 and "loud" not in wrong.text
    assert read_audit(audit)[-1]["trigger"] == "GET /status"


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 401, "missing bearer token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "missing bearer token"),
        (auth("not-the-token"), 403, "wrong bearer token"),
    ],
)
async def test_reload_refused_without_the_right_token(
    setup: tuple[sr.Reloader[App], pathlib.Path, pathlib.Path],
    client: httpx.AsyncClient,
    headers: dict[str, str],
    status: int,
    reason: str,
) -> None:
    """No token: 401 (with WWW-Authenticate); a wrong one: 403; nothing runs, and the
    attempt is audited with the caller as actor (the presented token is not written)."""
    reloader, cfg, audit = setup
    write_atomic(cfg, config_text(level="debug"))
    r = await client.post("/reload", headers=headers)
    assert r.status_code == status
    assert r.json() == {"error": reason}
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"
    assert reloader.current.log.level == "info"
    assert reloader.status()["last_trigger"] == "start"
    records = read_audit(audit)
    assert [rec["outcome"] for rec in records] == ["applied", "denied"]
    assert records[-1]["actor"] == "127.0.0.1"
    assert records[-1]["trigger"] == "POST /reload"
    assert records[-1]["errors"] == [reason]
    assert "not-the-token" not in audit.read_text()


async def test_reload_with_token_applies_and_names_the_actor(
    setup: tuple[sr.Reloader[App], pathlib.Path, pathlib.Path], client: httpx.AsyncClient
) -> None:
    """POST /reload with the token reloads (trigger http, actor = caller); restart-only
    changes come back as rejected, secrets masked."""
    reloader, cfg, audit = setup
    write_atomic(cfg, config_text(level="debug", port=9090))
    r = await client.post("/reload", headers=auth())
    assert r.status_code == 200
    body = r.json()
    assert body["outcome"] == "applied" and body["version"] == 2 and body["previous_version"] == 1
    assert body["trigger"] == "http" and body["actor"] == "127.0.0.1"
    assert body["applied"] == [{"path": "log.level", "old": "info", "new": "debug", "policy": "hot", "secret": False}]
    assert [c["path"] for c in body["rejected"]] == ["port"]
    assert reloader.current.log.level == "debug"
    assert read_audit(audit)[-1]["actor"] == "127.0.0.1"


async def test_reload_of_an_invalid_file_is_422_with_its_place(
    setup: tuple[sr.Reloader[App], pathlib.Path, pathlib.Path], client: httpx.AsyncClient
) -> None:
    """An invalid file gives 422 with compiler-style errors (file:line:col); the live
    config stays."""
    reloader, cfg, _ = setup
    write_atomic(cfg, config_text(level="verbose"))
    r = await client.post("/reload", headers=auth())
    assert r.status_code == 422
    body = r.json()
    assert body["outcome"] == "invalid" and body["version"] == 1
    assert body["errors"] and body["errors"][0].startswith(f"{cfg}:3:10: log.level:")
    assert reloader.current.log.level == "info"


async def test_rollback_needs_the_token_and_restores_a_version(
    setup: tuple[sr.Reloader[App], pathlib.Path, pathlib.Path], client: httpx.AsyncClient
) -> None:
    """POST /rollback/{v}: 401/403 without the right token, 200 with it, 404 for a version
    not kept."""
    reloader, cfg, audit = setup
    write_atomic(cfg, config_text(level="debug"))
    assert (await client.post("/reload", headers=auth())).json()["version"] == 2
    assert (await client.post("/rollback/1")).status_code == 401
    assert (await client.post("/rollback/1", headers=auth("nope"))).status_code == 403
    assert reloader.current.log.level == "debug"
    r = await client.post("/rollback/1", headers=auth())
    assert r.status_code == 200
    assert r.json()["outcome"] == "applied" and r.json()["trigger"] == "rollback"
    assert reloader.current.log.level == "info"
    missing = await client.post("/rollback/99", headers=auth())
    assert missing.status_code == 404 and "not in history" in missing.json()["error"]
    denied = [rec for rec in read_audit(audit) if rec["outcome"] == "denied"]
    assert [rec["trigger"] for rec in denied] == ["POST /rollback/1", "POST /rollback/1"]


async def test_metrics_exposes_the_reloader_registry(
    setup: tuple[sr.Reloader[App], pathlib.Path, pathlib.Path], client: httpx.AsyncClient
) -> None:
    """GET /metrics is Prometheus text from the reloader's registry, with the fixed names."""
    _, cfg, _ = setup
    write_atomic(cfg, config_text(level="debug"))
    await client.post("/reload", headers=auth())
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'selreload_config_version{config="web"} 2.0' in r.text
    assert 'selreload_reloads_total{config="web",outcome="applied"} 2.0' in r.text


async def test_state_changing_calls_are_post_only(client: httpx.AsyncClient) -> None:
    """GET /reload is 405: a link or prefetch cannot reload."""
    assert (await client.get("/reload")).status_code == 405


@pytest.mark.parametrize("token", ["", "   "])
async def test_empty_token_refused(setup: tuple[sr.Reloader[App], pathlib.Path, pathlib.Path], token: str) -> None:
    """admin_app refuses to build without a token."""
    with pytest.raises(ValueError, match="non-empty token"):
        admin_app(setup[0], token=token)


async def test_pin_middleware_keeps_one_snapshot_per_request(
    setup: tuple[sr.Reloader[App], pathlib.Path, pathlib.Path],
) -> None:
    """A request that started before a reload reads its own snapshot to the end (async and
    sync handlers alike), while `current` has moved on; the next request sees the new one."""
    reloader, cfg, _ = setup

    async def handler(request: Request) -> JSONResponse:
        before = reloader.pinned().log.level
        write_atomic(cfg, config_text(level="debug"))
        result = await run_in_threadpool(reloader.reload)
        in_thread = await run_in_threadpool(lambda: reloader.pinned().log.level)
        return JSONResponse(
            {
                "before": before,
                "after": reloader.pinned().log.level,
                "in_thread": in_thread,
                "current": reloader.current.log.level,
                "outcome": result.outcome.value,
            }
        )

    def sync_handler(request: Request) -> JSONResponse:
        return JSONResponse({"level": reloader.pinned().log.level})

    app = Starlette(routes=[Route("/work", handler), Route("/sync", sync_handler)])
    app.add_middleware(PinMiddleware, reloader=reloader)
    async with http(app) as c:
        body = (await c.get("/work")).json()
        assert body == {
            "before": "info",
            "after": "info",
            "in_thread": "info",
            "current": "debug",
            "outcome": "applied",
        }
        assert (await c.get("/sync")).json() == {"level": "debug"}
    assert reloader.pinned().log.level == "debug"  # outside any request: the live one


def _load_example() -> Any:
    path = pathlib.Path(__file__).parent.parent / "examples" / "fastapi_admin.py"
    spec = importlib.util.spec_from_file_location("fastapi_admin_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_fastapi_example_mounts_admin_and_pins(tmp_path: pathlib.Path) -> None:
    """examples/fastapi_admin.py: handlers get the pinned config through a dependency, the
    admin app answers under /admin, and a reload there changes what handlers see."""
    example = _load_example()
    cfg = tmp_path / "config.yaml"
    write_atomic(cfg, "greeting: hi\npage_size: 2\nport: 8001\napi_key: k3y-value\n")
    app = example.create_app(cfg, token=TOKEN, audit_path=str(tmp_path / "audit.jsonl"))
    # httpx does not run lifespan events: enter the app's lifespan (which starts the reloader).
    async with app.router.lifespan_context(app), http(app) as c:
        assert (await c.get("/items")).json() == {"greeting": "hi", "items": [0, 1]}
        config = (await c.get("/admin/config")).json()
        assert config["config"]["api_key"] == "***"
        write_atomic(cfg, "greeting: hey\npage_size: 3\nport: 8001\napi_key: k3y-value\n")
        assert (await c.post("/admin/reload")).status_code == 401
        r = await c.post("/admin/reload", headers=auth())
        assert r.status_code == 200
        # The file watcher may have applied the edit first; either way it is live now.
        assert r.json()["outcome"] in ("applied", "unchanged")
        assert (await c.get("/items")).json() == {"greeting": "hey", "items": [0, 1, 2]}
    assert "k3y-value" not in json.dumps(read_audit(tmp_path / "audit.jsonl"))

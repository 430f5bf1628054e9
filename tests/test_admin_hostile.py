"""The admin API under hostile path parameters and bodies: every answer a 4xx that says
what was wrong, never a 500, never the secret. (Found by a probe: a version of 5,000 digits
in `/rollback/...` or `/history/.../diff/...` raised out of `int()`, and `"for": 1e308` in
`POST /overrides` raised `OverflowError` while computing the expiry.)"""

from __future__ import annotations

import json
import pathlib
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._overrides_request import parse_ttl
from selreload.asgi import admin_app
from tests.conftest import write_atomic

pytestmark = pytest.mark.anyio

TOKEN = "t0ken-hostile-admin"
SECRET = "s3cr3t-hostile-admin"
VERSIONS = ["9" * 5000, "²", "\u0661", "0", "-1", "1e9", "%00", "%ff%fe", "sha256", "v1", " 1"]


@sr.config
class App:
    level: str = sr.hot(default="info")
    key: str = sr.secret(default="")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(tmp_path: pathlib.Path) -> AsyncIterator[httpx.AsyncClient]:
    cfg = tmp_path / "config.yaml"
    write_atomic(cfg, f"level: info\nkey: {SECRET}\n")
    reloader = sr.Reloader(
        App,
        [sr.YamlFile(cfg, watch=False)],
        audit=sr.AuditLog(tmp_path / "audit.jsonl"),
        registry=CollectorRegistry(),
        state_dir=tmp_path / "state",
    )
    with reloader:
        transport = httpx.ASGITransport(app=admin_app(reloader, token=TOKEN), client=("127.0.0.1", 50123))
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000", headers=headers) as c:
            yield c


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_version_that_names_nothing_is_a_404(client: httpx.AsyncClient, version: str) -> None:
    """`/rollback/V` and `/history/V/diff/1` for any V that is not a kept version: a 404
    naming it (cut when long), and the config stays."""
    for method, url in (("POST", f"/rollback/{version}"), ("GET", f"/history/{version}/diff/1")):
        got = await client.request(method, url)
        assert got.status_code == 404, (url[:40], got.status_code, got.text[:200])
        error = got.json()["error"]
        assert "is not in history (kept: 1" in error and len(error) < 300, error
    assert (await client.get("/history/1/diff/1")).status_code == 200


@pytest.mark.parametrize(
    ("ttl", "says"),
    [
        (1e308, "a duration must be at most 100 years"),
        ("1e999", "a duration must be at most 100 years"),
        (10**400, "a duration must be at most 100 years"),
        (-1, "a duration cannot be negative"),
        (0, "must be positive"),
        ("soon", "expected a duration like '15m'"),
        ([1] * 1000, "got a list of 1,000 items"),
        (True, "expected a duration like"),
    ],
)
async def test_a_bad_expiry_is_a_400_and_writes_nothing(client: httpx.AsyncClient, ttl: object, says: str) -> None:
    """`"for"` is read as a config duration is: finite, positive, at most 100 years."""
    body = json.dumps({"set": {"level": "debug"}, "for": ttl})
    got = await client.post("/overrides", content=body, headers={"Content-Type": "application/json"})
    assert got.status_code == 400, got.text
    assert got.json()["error"].startswith("for: ") and says in got.json()["error"], got.text
    status = (await client.get("/status")).json()
    assert status["overrides"] == [], status  # nothing was written
    good = await client.post("/overrides", json={"set": {"level": "debug"}, "for": "15m"})
    assert good.status_code == 200 and SECRET not in good.text


def test_the_command_line_reads_for_the_same_way() -> None:
    """`selreload set ... --for` goes through the same reader."""
    assert parse_ttl("1h30m") == 5400.0 and parse_ttl(90) == 90.0 and parse_ttl(None) is None
    with pytest.raises(ValueError, match=r"^for: a duration must be at most 100 years \(36500d\), got '101000d'$"):
        parse_ttl("101000d")

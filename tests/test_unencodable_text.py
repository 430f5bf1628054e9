"""Text UTF-8 cannot carry: a JSON `\\ud800` escape decodes into an unpaired surrogate, and
a file name of undecodable bytes holds surrogates too (`os.fsdecode`). Wherever such text
reaches (an issue's path, an origin), every channel still writes: the result, the audit
log (whose hash chain verifies), `status()`, the admin API. `reload()` raised
UnicodeEncodeError from the audit write before (found by `benchmarks/fuzz_long.py`)."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload.asgi import admin_app

TOKEN = "t" * 32
pytestmark = pytest.mark.anyio


@sr.config
class Db:
    host: str = sr.hot(default="db.local")


@sr.config
class App:
    level: str = sr.hot(default="info")
    db: Db = sr.field(factory=Db)
    extra: dict[str, object] = sr.hot(factory=dict)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _admin_status(reloader: sr.Reloader[Any]) -> httpx.Response:
    transport = httpx.ASGITransport(app=admin_app(reloader, token=TOKEN), client=("127.0.0.1", 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        return await c.get("/status", headers={"Authorization": f"Bearer {TOKEN}"})


def _every_channel(reloader: sr.Reloader[Any], audit: pathlib.Path, result: sr.ReloadResult) -> str:
    """What a reload wrote, each channel encoded as it is sent; the result's text."""
    shown = "\n".join(str(e) for e in result.errors)
    (shown + str(result)).encode("utf-8")  # every issue is text UTF-8 carries
    json.dumps(reloader.status(), ensure_ascii=False).encode("utf-8")
    audit.read_bytes().decode("utf-8")  # strict: valid UTF-8 on disk
    verification = sr.verify_audit(audit)
    assert verification.ok, verification
    return shown


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"level": "debug", "d\\ud800b": {"host": "a", "host": "b"}}', "d\\ud800b.host: duplicate key"),
        ('{"level": "debug", "x\\udfff": 1}', "x\\udfff: unknown key"),
        ('{"level": "debug", "extra": {"k\\ud800": 1, "k\\ud800": 2}}', "extra.k\\ud800: duplicate key"),
    ],
    ids=["duplicate-under-surrogate", "unknown-surrogate-key", "duplicate-surrogate-key"],
)
async def test_a_lone_surrogate_in_a_path_reaches_every_channel_escaped(
    tmp_path: pathlib.Path, text: str, needle: str
) -> None:
    path, audit = tmp_path / "config.json", tmp_path / "audit.jsonl"
    path.write_text('{"level": "info"}')
    reloader = sr.Reloader(
        App, [sr.JsonFile(path, watch=False)], audit=sr.AuditLog(audit), registry=CollectorRegistry()
    )
    with reloader:
        live = reloader.current
        path.write_text(text)
        result = reloader.reload()
        assert result.outcome is sr.Outcome.INVALID
        assert reloader.current is live
        assert needle in _every_channel(reloader, audit, result)
        assert needle in json.loads(audit.read_text().splitlines()[-1])["errors"][0]
        response = await _admin_status(reloader)
        assert response.status_code == 200
        assert needle in response.json()["last_error"]


async def test_a_file_name_of_undecodable_bytes_is_shown_escaped_and_audited(tmp_path: pathlib.Path) -> None:
    """The origin of every leaf holds the name; a bad edit names it in its error."""
    path = pathlib.Path(os.fsdecode(os.fsencode(tmp_path) + b"/conf\xff.yaml"))
    audit = tmp_path / "audit.jsonl"
    path.write_text("level: debug\n")
    reloader = sr.Reloader(
        App, [sr.YamlFile(path, watch=False)], audit=sr.AuditLog(audit), registry=CollectorRegistry()
    )
    with reloader:
        assert reloader.current.level == "debug"
        path.write_text("level: warning\n")
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        path.write_text("level: [\n")
        result = reloader.reload()
        assert result.outcome is sr.Outcome.INVALID
        assert "conf\\udcff.yaml:2:1: YAML syntax error" in _every_channel(reloader, audit, result)
        response = await _admin_status(reloader)
        assert response.status_code == 200
        assert "conf\\udcff.yaml" in response.json()["last_error"]


def test_issues_escape_what_utf8_cannot_carry() -> None:
    issue = sr.Issue("a\ud800", "bad \udcff", "f\udfff.yaml:1:1")
    assert (issue.path, issue.message, issue.origin) == ("a\\ud800", "bad \\udcff", "f\\udfff.yaml:1:1")
    assert sr.Issue("é.x", "ok ✓").path == "é.x"  # encodable text is kept as it is

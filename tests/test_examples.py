"""The examples under examples/ run and show what they claim."""

from __future__ import annotations

import datetime
import importlib
import os
import pathlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

import selreload as sr

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `examples` is a directory of the checkout, not installed

llm_providers = importlib.import_module("examples.llm_providers")
adr_service = importlib.import_module("examples.adr_service")
layered_fastapi = importlib.import_module("examples.layered_fastapi")
atomic_sighup = importlib.import_module("examples.atomic_sighup")
pydantic_models = importlib.import_module("examples.pydantic_models")

SECRETS = ("first-signing-key", "second-signing-key", "first-admin-password", "second-admin-password")


# The seed configs run on both schema backends: the attrs classes and their pydantic twins.
LLM_SCHEMAS = pytest.mark.parametrize(
    "llm_schema", [llm_providers.LlmConfig, pydantic_models.LlmConfig], ids=["attrs", "pydantic"]
)
ADR_SCHEMAS = [adr_service.AdrConfig, pydantic_models.AdrConfig]


# --- 1. LLM providers -------------------------------------------------------------------


@LLM_SCHEMAS
def test_llm_model_change_is_live_and_subscriber_gets_old_and_new(tmp_path: pathlib.Path, llm_schema: Any) -> None:
    """A model_name edit is applied live; the subscriber receives the old and the new provider lists."""
    lines: list[str] = []
    seen = llm_providers.run(tmp_path, say=lines.append, schema=llm_schema)
    applied = seen.results[0]
    assert applied.outcome is sr.Outcome.APPLIED and [c.path for c in applied.applied] == ["providers"]
    ((old, new),) = seen.notified
    assert [p.model_name for p in old] == ["gpt-4o", "claude-3-5-haiku"]
    assert [p.model_name for p in new] == ["gpt-4.1", "claude-3-5-haiku"]
    assert seen.answers[:2] == ["[openai:gpt-4o] hello", "[openai:gpt-4.1] hello"]


@LLM_SCHEMAS
def test_llm_invalid_edit_keeps_the_old_config(tmp_path: pathlib.Path, llm_schema: Any) -> None:
    """A typo'd provider is INVALID with file:line:col; config, router and version stay as they were."""
    seen = llm_providers.run(tmp_path, say=lambda _line: None, schema=llm_schema)
    invalid = seen.results[1]
    assert invalid.outcome is sr.Outcome.INVALID
    assert str(invalid.errors[0]).startswith(f"{tmp_path / 'llm.yaml'}:6:15: providers[1].provider: must be one of")
    assert seen.reloader.snapshot.version == 2
    assert seen.reloader.current.providers[1].provider == "anthropic"
    assert seen.answers[2] == "[anthropic:claude-3-5-haiku] hello"
    assert len(seen.notified) == 1  # the refused edit told no subscriber


# --- 2. the web service with a policy file ----------------------------------------------


@pytest.fixture(params=ADR_SCHEMAS, ids=["attrs", "pydantic"])
def adr_run(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> Iterator[tuple[Any, list[str]]]:
    lines: list[str] = []
    caplog.set_level("INFO", logger="selreload")
    yield adr_service.run(tmp_path, say=lines.append, schema=request.param), [*lines, caplog.text]


def test_adr_each_hot_field_changes_live_through_its_applier(adr_run: tuple[Any, list[str]]) -> None:
    """logging.level, api.v2_enabled, sampler type and ratio, jwt ttl: each APPLIED alone and seen by its applier."""
    seen, _ = adr_run
    for leaf, result in seen.hot.items():
        assert result.outcome is sr.Outcome.APPLIED, (leaf, result)
        assert [c.path for c in result.applied] == [leaf]
    assert seen.states["start"]["logging.level"] == "info" and seen.states["logging.level"]["logging.level"] == "debug"
    assert seen.states["logging.level"]["api.v2_enabled"] is False and seen.states["api.v2_enabled"]["api.v2_enabled"]
    assert seen.states["telemetry.sampler.type"]["telemetry.sampler"] == "TraceIdRatioBased"
    assert seen.states["telemetry.sampler.type"]["sampled_of_20"] == 20
    assert seen.states["telemetry.sampler.ratio"]["sampled_of_20"] == 0
    assert seen.states["auth.jwt.ttl"]["auth.jwt.ttl"] == str(datetime.timedelta(minutes=15))


def test_adr_each_restart_only_field_is_rejected_and_pending(adr_run: tuple[Any, list[str]]) -> None:
    """server.*, database.*, both secrets: each REJECTED, listed in status()["restart_pending"], never live."""
    seen, _ = adr_run
    expected: list[str] = []
    for leaf, result in seen.restart.items():
        expected.append(leaf)
        assert result.outcome is sr.Outcome.REJECTED, (leaf, result)
        assert seen.pending[leaf] == expected
    live = seen.service.reloader.current
    assert (live.server.port, live.database.pool_size, live.auth.jwt_secret) == (8080, 10, "first-signing-key")
    assert len(expected) == 6


def test_adr_secrets_never_printed(adr_run: tuple[Any, list[str]]) -> None:
    """Neither the example's output nor selreload's log contains a secret value."""
    _, output = adr_run
    text = "\n".join(output)
    assert "auth.jwt_secret" in text and "***" in text
    for secret in SECRETS:
        assert secret not in text


def test_adr_schema_importable_both_ways() -> None:
    """`examples.adr_service:AdrConfig` is the class shipped as `selreload.demo:AdrConfig`."""
    from selreload.demo import AdrConfig

    assert adr_service.AdrConfig is AdrConfig


# --- 3. layered config behind FastAPI ---------------------------------------------------


@pytest.fixture
async def layered(tmp_path: pathlib.Path) -> AsyncIterator[tuple[Any, dict[str, str], httpx.AsyncClient]]:
    config_dir = tmp_path / "config"
    layered_fastapi.write_config(config_dir)
    environ = {"APP_PAGE_SIZE": "50"}
    reloader = sr.Reloader(layered_fastapi.Settings, layered_fastapi.sources(config_dir, environ))
    transport = httpx.ASGITransport(app=layered_fastapi.create_app(reloader))
    with reloader:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield reloader, environ, client


def test_layered_example_runs(tmp_path: pathlib.Path) -> None:
    """The scripted session ends on the last valid config (v2), after refusing the bad file and bad variable."""
    log = layered_fastapi.run(tmp_path, say=lambda _line: None)
    url, body = log[-1]
    assert url == "/settings" and body["version"] == 2 and body["feature_flags"]["dark_mode"] is True


@pytest.mark.anyio
async def test_layers_merge_in_order_over_http(layered: tuple[Any, dict[str, str], httpx.AsyncClient]) -> None:
    """Defaults < production.yaml < APP_ variables, as /settings and /feature/{name} report them."""
    _reloader, _environ, client = layered
    body = (await client.get("/settings")).json()
    assert body["environment"] == "production"  # production.yaml over default.yaml
    assert body["server"] == {"host": "127.0.0.1", "port": 8443}  # deep-merged
    assert body["page_size"] == 50  # APP_PAGE_SIZE over both files
    assert (await client.get("/feature/new_checkout")).json() == {"name": "new_checkout", "enabled": True}
    assert (await client.get("/feature/dark_mode")).json() == {"name": "dark_mode", "enabled": False}
    assert (await client.get("/feature/nope")).status_code == 404


@pytest.mark.anyio
async def test_layered_reload_is_seen_by_the_next_request(
    layered: tuple[Any, dict[str, str], httpx.AsyncClient], tmp_path: pathlib.Path
) -> None:
    """After a file edit and reload, the next HTTP request reads the new values."""
    reloader, environ, client = layered
    (tmp_path / "config" / "production.yaml").write_text(
        layered_fastapi.PRODUCTION_YAML.replace("new_checkout: true", "new_checkout: false")
    )
    environ["APP_PAGE_SIZE"] = "75"
    assert reloader.reload().outcome is sr.Outcome.APPLIED
    assert (await client.get("/feature/new_checkout")).json()["enabled"] is False
    assert (await client.get("/settings")).json()["page_size"] == 75


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("layer", "value", "origin", "message"),
    [
        ("env", ("APP_SERVER__PORT", "80"), "env:APP_SERVER__PORT", "server.port: must be >= 1024"),
        ("env", ("APP_SERVER__PORT", "70000"), "env:APP_SERVER__PORT", "server.port: must be <= 65535"),
        ("env", ("APP_PAGE_SIZE", "lots"), "env:APP_PAGE_SIZE", "page_size: "),
        ("file", ("log_level: warning", "log_level: verbose"), "production.yaml:3:12", "log_level: must be one of"),
        ("file", ("environment: production", "environment: prod"), "production.yaml:1:14", "environment: must be one"),
    ],
)
async def test_layered_schema_checks_name_the_layer(
    layered: tuple[Any, dict[str, str], httpx.AsyncClient],
    tmp_path: pathlib.Path,
    layer: str,
    value: tuple[str, str],
    origin: str,
    message: str,
) -> None:
    """Port range and choices are checked; the error names the variable or file:line:col; HTTP keeps the old config."""
    reloader, environ, client = layered
    if layer == "env":
        environ[value[0]] = value[1]
    else:
        path = tmp_path / "config" / "production.yaml"
        path.write_text(layered_fastapi.PRODUCTION_YAML.replace(*value))
    result = reloader.reload()
    assert result.outcome is sr.Outcome.INVALID
    (issue,) = result.errors
    assert (issue.origin or "").endswith(origin)
    assert message in str(issue)
    assert (await client.get("/settings")).json()["version"] == 1


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- 4. SIGHUP, atomic swap, in-flight requests -------------------------------------------


def test_sighup_swaps_atomically_and_in_flight_request_keeps_its_snapshot(tmp_path: pathlib.Path) -> None:
    """A slow request started before the SIGHUP reload ends on the old snapshot; a new one sees the new."""
    seen = atomic_sighup.run(tmp_path, say=lambda _line: None)
    assert seen.slow.first == seen.slow.last == ("EUR", 20)
    assert seen.fresh.first == seen.fresh.last == ("USD", 0)
    assert seen.outcomes == ["applied", "invalid"]
    assert seen.versions == [1, 2, 2]
    assert seen.after_broken.first == ("USD", 0)


# --- every example as a script ------------------------------------------------------------


@pytest.mark.parametrize("name", ["llm_providers", "adr_service", "layered_fastapi", "atomic_sighup"])
def test_example_runs_as_a_script(tmp_path: pathlib.Path, name: str) -> None:
    """`python examples/<name>.py DIR` exits 0 (and the adr_service run prints no secret)."""
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for secret in SECRETS:
        assert secret not in proc.stdout + proc.stderr

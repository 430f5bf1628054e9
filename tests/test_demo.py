"""`selreload demo`: the real service in a subprocess on a free loopback port, edited live."""

from __future__ import annotations

import logging
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import write_atomic

import selreload as sr
from selreload._change import Change, Policy
from selreload._present import Painter, narrate
from selreload.demo import DEFAULT_CONFIG

TOKEN = "demo-test-token"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], *, timeout: float = 30.0, what: str) -> Any:
    """Poll `check` until it returns something truthy, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.TransportError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Demo:
    """A running `python -m selreload demo` and an HTTP client for it."""

    def __init__(self, tmp: pathlib.Path, config: pathlib.Path) -> None:
        self.port = free_port()
        self.config = config
        self.out = tmp / "stdout.txt"
        self.err = tmp / "stderr.txt"
        env = dict(os.environ, SELRELOAD_ADMIN_TOKEN=TOKEN, NO_COLOR="1")
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "selreload", "demo", "--config", str(config), "--port", str(self.port)],
                stdout=out,
                stderr=err,
                env=env,
                cwd=tmp,
            )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10.0)

    def get(self, path: str) -> httpx.Response:
        if self.proc.poll() is not None:
            raise AssertionError(f"demo exited with {self.proc.returncode}: {self.err.read_text()}")
        return self.http.get(path)

    def stop(self) -> int:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise


@pytest.fixture
def demo(tmp_path: pathlib.Path) -> Iterator[Demo]:
    # The config lives in its own directory: the demo watches it, and our output files
    # must not be in it.
    d = Demo(tmp_path, tmp_path / "svc" / "config.yaml")
    try:
        yield d
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(timeout=10)


def test_demo_serves_reloads_and_stops_cleanly(demo: Demo) -> None:
    """The demo writes a default config, serves it, applies a hot edit of its file (seen at
    GET /config and in /metrics), rejects a restart-only one as pending, refuses POST
    /reload without the token, prints the reload as a block, never shows a secret, and
    exits 0 on SIGINT."""
    wait_for(lambda: demo.get("/status").status_code == 200, what="the demo to answer")
    body = demo.get("/config").json()
    assert body["version"] == 1
    assert body["config"]["logging"]["level"] == "info"
    assert body["config"]["auth"]["jwt_secret"] == "***"
    assert demo.config.read_text(encoding="utf-8") == DEFAULT_CONFIG.format(host="127.0.0.1", port=demo.port)

    text = demo.config.read_text(encoding="utf-8")
    edited = text.replace("level: info ", "level: debug").replace(f"port: {demo.port}", "port: 9")
    assert edited != text
    write_atomic(demo.config, edited)

    body = wait_for(lambda: (b := demo.get("/config").json())["version"] == 2 and b, what="version 2 at GET /config")
    assert body["config"]["logging"]["level"] == "debug"
    assert body["config"]["server"]["port"] == demo.port  # restart-only: the live value stays
    assert demo.get("/status").json()["restart_pending"] == ["server.port"]
    metrics = demo.get("/metrics").text
    assert 'selreload_config_version{config="demo"} 2.0' in metrics
    assert 'selreload_restart_pending{config="demo"} 1.0' in metrics
    assert 'selreload_reloads_total{config="demo",outcome="applied"} 2.0' in metrics
    assert demo.get("/").json()["logging"]["level"] == "debug"  # the LogLevel applier ran

    assert demo.http.post("/reload").status_code == 401
    r = demo.http.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json()["outcome"] in ("unchanged", "rejected")

    assert demo.stop() == 0
    out = demo.out.read_text()
    assert "v1 -> v2  applied  (file" in out
    assert "logging.level  'info' -> 'debug'" in out
    assert "restart pending" in out and "DENIED POST /reload from 127.0.0.1" in out
    everything = out + demo.err.read_text()
    assert "demo-signing-key" not in everything and "demo-password" not in everything
    audit = sr.verify_audit(demo.config.parent / "audit.jsonl")
    assert audit.ok and audit.records >= 3


def test_demo_refuses_an_invalid_config(tmp_path: pathlib.Path) -> None:
    """An invalid config at start: the demo exits 1 naming file:line:col, serving nothing."""
    config = tmp_path / "config.yaml"
    config.write_text("logging:\n  level: loud\n")
    proc = subprocess.run(
        [sys.executable, "-m", "selreload", "demo", "--config", str(config), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=dict(os.environ, SELRELOAD_ADMIN_TOKEN=TOKEN),
    )
    assert proc.returncode == 1
    assert f"{config}:2:10: logging.level: must be one of" in proc.stderr


def test_narrated_block_shows_changes_pending_and_errors() -> None:
    """A reload block: versions, trigger, each change old -> new, restart-only ones marked
    'restart pending', secrets masked; an invalid one lists file:line:col errors."""
    paint = Painter(False)
    applied = sr.ReloadResult(
        sr.Outcome.APPLIED,
        3,
        applied=(Change("logging.level", "info", "debug", Policy.HOT),),
        rejected=(Change("auth.jwt_secret", "a-secret", "b-secret", Policy.RESTART_ONLY, secret=True),),
        trigger="file",
        previous_version=2,
    )
    text = narrate(applied, paint=paint)
    assert "v2 -> v3  applied  (file," in text
    assert "logging.level    'info' -> 'debug'" in text
    assert " ! auth.jwt_secret  *** -> ***" in text and "restart pending" in text
    assert "a-secret" not in text and "b-secret" not in text
    invalid = sr.ReloadResult(
        sr.Outcome.INVALID, 3, errors=(sr.Issue("logging.level", "must be one of ...", "c.yaml:3:10"),), trigger="http"
    )
    text = narrate(invalid, paint=paint)
    assert "v3  INVALID  (http" in text and "v3 stays live" in text
    assert "c.yaml:3:10: logging.level: must be one of ..." in text
    assert "\x1b[" not in text
    assert "\x1b[32mapplied\x1b[0m" in narrate(applied, paint=Painter(True))


def test_demo_log_filter_drops_only_what_it_narrates() -> None:
    """The demo's log filter drops the reload-outcome and refused-call lines it prints as
    blocks (by logger name), and keeps failures with a traceback and every other logger."""
    from selreload.demo._app import _NotNarrated

    def record(name: str, *, exc: bool = False) -> logging.LogRecord:
        exc_info = (ValueError, ValueError("boom"), None) if exc else None
        return logging.LogRecord(name, logging.ERROR, __file__, 1, "msg", None, exc_info)

    keep = _NotNarrated().filter
    assert not keep(record("selreload.reload"))
    assert not keep(record("selreload.http"))
    assert keep(record("selreload.reload", exc=True))
    assert keep(record("selreload.http", exc=True))
    for name in ("selreload.watch", "selreload.record", "selreload.demo", "uvicorn.error"):
        assert keep(record(name)), name

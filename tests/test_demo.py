"""`selreload demo`: the real service in a subprocess on a free loopback port, edited live."""

from __future__ import annotations

import logging
import os
import pathlib
import signal
import socket
import stat
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

    def __init__(
        self, tmp: pathlib.Path, config: pathlib.Path, *, token: str | None = TOKEN, stdout: Any = None
    ) -> None:
        self.port = free_port()
        self.config = config
        self.out = tmp / "stdout.txt"
        self.err = tmp / "stderr.txt"
        env = dict(os.environ, NO_COLOR="1")
        env.pop("SELRELOAD_ADMIN_TOKEN", None)
        if token is not None:
            env["SELRELOAD_ADMIN_TOKEN"] = token
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "selreload", "demo", "--config", str(config), "--port", str(self.port)],
                stdout=out if stdout is None else stdout,
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
    assert 'logging.level  "info" -> "debug"' in out
    assert "restart pending" in out and "DENIED POST /reload from 127.0.0.1" in out
    everything = out + demo.err.read_text()
    assert "demo-signing-key" not in everything and "demo-password" not in everything
    audit = sr.verify_audit(demo.config.parent / "audit.jsonl")
    assert audit.ok and audit.records >= 3
    assert not (demo.config.parent / "admin-token").exists()  # the token came from the environment


def mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_demo_keeps_its_secrets_private(tmp_path: pathlib.Path) -> None:
    """Without $SELRELOAD_ADMIN_TOKEN and with stdout not a terminal: the generated token is
    only in `admin-token` (0600) next to the config, never in the output; the config and the
    audit log are 0600 in a 0700 directory; the admin endpoints refuse a foreign `Host`,
    and GET /status keeps error texts behind the token."""
    demo = Demo(tmp_path, tmp_path / "svc" / "config.yaml", token=None)
    try:
        wait_for(lambda: demo.get("/status").status_code == 200, what="the demo to answer")
        svc = demo.config.parent
        token_file = svc / "admin-token"
        token = token_file.read_text(encoding="utf-8").strip()
        assert len(token) >= 32
        assert (mode(demo.config), mode(svc / "audit.jsonl"), mode(token_file), mode(svc)) == (
            0o600,
            0o600,
            0o600,
            0o700,
        )

        write_atomic(demo.config, demo.config.read_text(encoding="utf-8").replace("level: info ", "level: loud"))
        wait_for(lambda: demo.get("/status").json()["last_outcome"] == "invalid", what="the invalid edit")
        public = demo.get("/status").json()
        assert "last_error" not in public and public["withheld"] == ["last_error", "unhealthy_reasons"]
        full = demo.http.get("/status", headers={"Authorization": f"Bearer {token}"}).json()
        assert "logging.level" in full["last_error"]
        assert demo.http.get("/config", headers={"Host": "evil.example"}).status_code == 400
        assert demo.http.get("/config", headers={"Host": f"localhost:{demo.port}"}).status_code == 200
        r = demo.http.post("/reload", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code in (200, 422) and "outcome" in r.json()  # authenticated: the reload ran
    finally:
        assert demo.stop() == 0
    out = demo.out.read_text()
    assert f"admin token: in {token_file} (generated, 0600" in out
    assert f"TOKEN=$(cat {token_file})" in out
    assert token not in out + demo.err.read_text()


def test_demo_shows_a_generated_token_once_to_a_terminal(tmp_path: pathlib.Path) -> None:
    """With stdout a terminal (a real pty), the generated token is printed once, in the
    banner, and is the one in `admin-token`."""
    import pty
    import select

    master, slave = pty.openpty()
    demo = Demo(tmp_path, tmp_path / "svc" / "config.yaml", token=None, stdout=slave)
    os.close(slave)
    seen = b""

    def drain(until: bytes | None, timeout: float) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while (until is None or until not in seen) and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    return
                if not chunk:
                    return
                seen += chunk

    try:
        drain(b"then edit the config", 30)
        token = (demo.config.parent / "admin-token").read_text(encoding="utf-8").strip()
        wait_for(lambda: demo.get("/status").status_code == 200, what="the demo to answer")
    finally:
        demo.http.close()
        demo.proc.send_signal(signal.SIGINT)
        drain(None, 10)
        demo.proc.wait(timeout=30)
        os.close(master)
    assert seen.decode().count(token) == 1
    assert f"admin token: {token}   (generated" in seen.decode()


def run_demo(
    tmp_path: pathlib.Path, *args: str, config: pathlib.Path | None = None
) -> subprocess.CompletedProcess[str]:
    config = config or tmp_path / "svc" / "config.yaml"
    return subprocess.run(
        [sys.executable, "-m", "selreload", "demo", "--config", str(config), "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=dict(os.environ, SELRELOAD_ADMIN_TOKEN=TOKEN),
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.com"])
def test_demo_refuses_a_remote_host_without_opt_in(tmp_path: pathlib.Path, host: str) -> None:
    """`--host` beyond loopback without `--allow-remote`: exit 1 saying so, before writing anything."""
    proc = run_demo(tmp_path, "--host", host)
    assert proc.returncode == 1
    assert f"the demo would serve on {host!r}, beyond loopback" in proc.stderr and "--allow-remote" in proc.stderr
    assert not (tmp_path / "svc").exists()


def test_demo_refuses_a_remote_host_from_its_config(tmp_path: pathlib.Path) -> None:
    """A config whose server.host is beyond loopback (no --host): refused the same way."""
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  host: 0.0.0.0\n")
    proc = run_demo(tmp_path, config=config)
    assert proc.returncode == 1
    assert "the demo would serve on '0.0.0.0', beyond loopback" in proc.stderr


def test_demo_allow_remote_warns_loudly(tmp_path: pathlib.Path) -> None:
    """`--allow-remote`: a WARNING on stderr before serving. (192.0.2.1, a documentation
    address this machine does not have, so the bind fails and nothing is exposed.)"""
    proc = run_demo(tmp_path, "--host", "192.0.2.1", "--allow-remote")
    assert proc.returncode != 0
    assert "WARNING: --allow-remote: serving on '192.0.2.1', beyond loopback" in proc.stderr
    assert "Host must name 192.0.2.1" in proc.stderr


def test_loopback_and_admin_hosts() -> None:
    """What counts as loopback, and the `Host` names the demo's admin endpoints accept."""
    from selreload.demo._app import admin_hosts, is_loopback

    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "localhost."):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "", "10.0.0.1", "192.0.2.1", "example.com", "localhost.example.com", "::ffff:1"):
        assert not is_loopback(host), host
    assert admin_hosts("127.0.0.1") == ("127.0.0.1", "localhost", "::1")
    assert admin_hosts("127.0.0.2") == ("127.0.0.1", "localhost", "::1", "127.0.0.2")
    assert admin_hosts("0.0.0.0") == admin_hosts("::") == ("*",)


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
    assert 'logging.level    "info" -> "debug"' in text
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


def test_restoring_a_broken_file_says_recovered_and_clears_the_error(demo: Demo) -> None:
    """Break the file, then put the good text back: the demo prints a `recovered` line (the
    reload is UNCHANGED, so nothing is audited) and GET /status drops `last_error`."""
    wait_for(lambda: demo.get("/status").status_code == 200, what="the demo to answer")
    good = demo.config.read_text(encoding="utf-8")
    write_atomic(demo.config, good.replace("level: info ", "level: loud"))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    wait_for(lambda: demo.http.get("/status", headers=auth).json()["last_error"], what="the invalid edit")
    write_atomic(demo.config, good)
    wait_for(lambda: demo.http.get("/status", headers=auth).json()["last_error"] is None, what="the error cleared")
    assert demo.stop() == 0
    out = demo.out.read_text()
    assert "INVALID" in out
    assert "recovered  (file" in out and "the sources are valid again" in out


def test_a_busy_port_is_one_line_before_any_banner(tmp_path: pathlib.Path) -> None:
    """With the port taken, the demo exits 1 with one `selreload: error:` line naming the
    port and a hint, before printing its banner; no traceback, no Errno 98 after the fact."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        env = dict(os.environ, NO_COLOR="1", SELRELOAD_ADMIN_TOKEN=TOKEN)
        config = tmp_path / "svc" / "config.yaml"
        r = subprocess.run(
            [sys.executable, "-m", "selreload", "demo", "--config", str(config), "--port", str(port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    assert r.returncode == 1
    assert "selreload demo on" not in r.stdout and "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("selreload: error:")]
    assert len(errors) == 1 and f"cannot serve on 127.0.0.1:{port}" in errors[0] and "--port" in errors[0]

"""The admin console: its JSON (`/explain`, `/history/{a}/diff/{b}`, `/audit`) through a real
HTTP client, and the page itself in headless Chromium over the DevTools protocol, token
flow and screenshot included."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest
import uvicorn
import websocket
from conftest import write_atomic
from PIL import Image, ImageStat
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._audit import AuditLog
from selreload.asgi import admin_app

TOKEN = "console-token-42"
SECRET = "s3cr3t-never-in-the-page"


@sr.config
class Log:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning"]))


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    log: Log = sr.field(factory=Log)
    api_key: str = sr.secret(default="")


def text(level: str = "info", port: int = 8080) -> str:
    return f"port: {port}\nlog:\n  level: {level}\napi_key: {SECRET}\n"


@pytest.fixture
def served(tmp_path: pathlib.Path) -> Iterator[tuple[sr.Reloader[App], pathlib.Path, str]]:
    """The admin app on a real uvicorn server on loopback: (reloader, config file, base URL)."""
    cfg = tmp_path / "config.yaml"
    write_atomic(cfg, text())
    reloader = sr.Reloader(
        App,
        sources=[sr.YamlFile(cfg, watch=False)],
        audit=AuditLog(tmp_path / "audit.jsonl"),
        registry=CollectorRegistry(),
        name="console",
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    with reloader:
        server = uvicorn.Server(uvicorn.Config(admin_app(reloader, token=TOKEN), log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            yield reloader, cfg, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(10)
            sock.close()


def test_explain_diff_and_audit_json(served: Any) -> None:
    """`/explain` gives path, masked value, origin and policy per leaf; the diff between two
    versions names the changes; `/audit` needs the token and shows an intact chain."""
    reloader, cfg, base = served
    with httpx.Client(base_url=base) as c:
        leaves = {row["path"]: row for row in c.get("/explain").json()}
        assert leaves["log.level"]["value"] == "info" and leaves["log.level"]["policy"] == "hot"
        assert leaves["log.level"]["origin"].endswith("config.yaml:3:10")
        assert leaves["api_key"] == {**leaves["api_key"], "value": "***", "secret": True, "policy": "restart_only"}
        write_atomic(cfg, text(level="debug"))
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        d = c.get("/history/1/diff/2").json()
        assert d["changes"] == [{**d["changes"][0], "path": "log.level", "old": "info", "new": "debug"}]
        assert c.get("/history/1/diff/9").status_code == 404
        assert c.get("/audit").status_code == 401
        audit = c.get("/audit", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert audit["ok"] is True and audit["records"] >= 2
        assert [r["version"] for r in audit["last"] if r.get("outcome") == "applied"][-1] == 2
        for url in ("/explain", "/history/1/diff/2", "/ui"):
            assert SECRET not in c.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).text


def test_ui_page_is_self_contained_and_locked_down(served: Any) -> None:
    """`GET /` redirects to `/ui`; the page loads nothing from elsewhere, and its CSP allows
    only its own nonce'd script and style."""
    _, _, base = served
    with httpx.Client(base_url=base) as c:
        r = c.get("/", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == "/ui"
        page = c.get("/ui")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        nonce = re.search(r"'nonce-([^']+)'", csp)
        assert nonce and f'nonce="{nonce.group(1)}"' in page.text and "default-src 'none'" in csp
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)
        assert "{{nonce}}" not in page.text


# --- the page in a real browser ----------------------------------------------------------


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """A minimal Chrome DevTools Protocol client for one page target."""

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self._id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")


@contextlib.contextmanager
def browser(tmp_path: pathlib.Path) -> Iterator[Page]:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (make installs it: apt-get install chromium)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--window-size=1280,1000",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    drain = None
    try:
        assert proc.stderr is not None
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                raise AssertionError(f"chromium exited with {proc.returncode}")
            if m := re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line):
                port = int(m.group(1))
        assert port is not None, "chromium did not print its DevTools address"
        drain = threading.Thread(target=proc.stderr.read, daemon=True)  # keep the pipe drained
        drain.start()
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
        page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        try:
            yield page
        finally:
            page.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if drain is not None:
            drain.join(5)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.slow
def test_console_in_headless_chromium(served: Any, tmp_path: pathlib.Path) -> None:
    """The page shows the live config with origins and policies (secret masked), restart
    pending, history and a diff; with the token it shows the audit chain and reloads and
    rolls back; the token stays in sessionStorage, out of the URL; the screenshot is a
    real, non-blank page."""
    reloader, cfg, base = served
    with browser(tmp_path) as page:
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Page.navigate", url=f"{base}/")
        page.wait("document.body && document.body.dataset.loaded === '1'")
        assert page.js("location.pathname") == "/ui"
        rows = page.js("[...document.querySelectorAll('#config tr')].map(r => [...r.cells].map(c => c.textContent))")
        by_path = {r[0]: r for r in rows}
        assert by_path["log.level"][1:3] == ["info", "hot"] and by_path["log.level"][3].endswith("config.yaml:3:10")
        assert by_path["api_key"][1:3] == ["***", "restart_only"]
        assert SECRET not in page.js("document.documentElement.outerHTML")
        assert page.js("document.getElementById('reload').disabled") is True
        assert "enter the token" in page.js("document.getElementById('audit-state').textContent")
        assert page.js("document.getElementById('workers-panel').hidden") is True  # no /workers here

        # A restart-only edit and a hot one, from outside: restart pending shows up.
        write_atomic(cfg, text(level="debug", port=9090))
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        page.js("refresh()")
        page.wait("document.getElementById('version').textContent === 'version 2'")
        assert page.js("document.getElementById('pending').textContent") == "restart pending: 1"

        # A wrong token is refused; the right one unlocks the audit log and the actions.
        page.js("document.getElementById('token').value = 'wrong'; document.getElementById('save-token').click()")
        page.wait("document.getElementById('message').textContent.includes('token refused (403)')")
        page.js(f"document.getElementById('token').value = '{TOKEN}'; document.getElementById('save-token').click()")
        page.wait("document.getElementById('audit-state').textContent.startsWith('chain intact')")
        assert page.js("sessionStorage.getItem('selreload.token')") == TOKEN
        assert TOKEN not in page.js("location.href") and page.js("document.getElementById('token').value") == ""

        page.js("document.getElementById('diff-a').value = '1'; document.getElementById('diff-b').value = '2'")
        page.js("document.getElementById('diff').click()")
        page.wait("document.querySelectorAll('#diff-out tr').length === 1")
        diff = page.js("[...document.querySelectorAll('#diff-out td')].map(c => c.textContent)")
        assert diff == ["log.level", "info", "debug", "hot"]

        page.js("document.querySelector('button.rollback[data-version=\"1\"]').click()")
        page.wait("document.getElementById('message').textContent.startsWith('rollback to v1: 200 applied')")
        assert reloader.current.log.level == "info"
        write_atomic(cfg, text(level="warning", port=9090))  # a rollback holds until new bytes
        page.js("document.getElementById('reload').click()")
        page.wait("document.getElementById('message').textContent.startsWith('reload: 200 applied (version 4)')")
        assert reloader.current.log.level == "warning"
        page.js("document.getElementById('ov-path').value = 'log.level'; document.getElementById('override').click()")
        page.wait("document.getElementById('message').textContent.includes('no overrides endpoint')")

        shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "console.png").write_bytes(shot)
    image = Image.open(io.BytesIO(shot)).convert("L")
    assert image.size[0] >= 1000 and image.size[1] >= 700, image.size
    stat = ImageStat.Stat(image)
    assert stat.stddev[0] > 20, stat.stddev  # not a blank page: text, tables, the header bar
    assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 16

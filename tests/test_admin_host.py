"""The admin app's `Host` check, through real uvicorn on loopback and a real httpx client."""

from __future__ import annotations

import pathlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from conftest import write_atomic
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload.asgi import admin_app

TOKEN = "host-check-token"
SECRET = "hunter2-do-not-show"


@sr.config
class App:
    level: str = sr.hot(default="info")
    api_key: str = sr.secret(default="")


def free_port(family: socket.AddressFamily = socket.AF_INET, host: str = "127.0.0.1") -> int:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Served:
    """An ASGI app served by uvicorn in a thread, on `host` and a free port."""

    def __init__(self, app: Any, host: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host, self.port = host, free_port(family, host)
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{'[' + self.host + ']' if ':' in self.host else self.host}:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def reloader(tmp_path: pathlib.Path) -> Iterator[sr.Reloader[App]]:
    cfg = tmp_path / "config.yaml"
    write_atomic(cfg, f"level: info\napi_key: {SECRET}\n")
    r = sr.Reloader(App, sources=[sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry(), name="host")
    with r:
        yield r


@pytest.fixture
def served(reloader: sr.Reloader[App]) -> Iterator[Served]:
    with Served(admin_app(reloader, token=TOKEN), "127.0.0.1") as s:
        yield s


def test_foreign_host_is_refused_before_anything(served: Served, reloader: sr.Reloader[App]) -> None:
    """A request naming another host (a DNS-rebound page sends its own name) gets 400 on
    every endpoint, even with the right token, and nothing runs; the loopback names pass,
    whatever the port."""
    with httpx.Client(base_url=served.url, timeout=10) as http:
        for path in ("/config", "/status", "/history", "/metrics"):
            r = http.get(path, headers={"Host": f"evil.example:{served.port}"})
            assert r.status_code == 400, path
            assert SECRET not in r.text and "level" not in r.text
        r = http.post("/reload", headers={"Host": "evil.example", "Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 400
        assert reloader.status()["last_trigger"] == "start"  # the reload never ran

        for host in (f"127.0.0.1:{served.port}", "127.0.0.1", "localhost:1", "LOCALHOST", f"[::1]:{served.port}"):
            r = http.get("/config", headers={"Host": host})
            assert r.status_code == 200, host
            assert r.json()["config"] == {"level": "info", "api_key": "***"}
        # Names that only look loopback are someone else's.
        for host in ("127.0.0.1.evil.example", "localhost.evil.example", "127.0.0.2", "::1", ""):
            assert http.get("/status", headers={"Host": host}).status_code == 400, host
        assert (
            http.post("/reload", headers={"Host": "localhost", "Authorization": f"Bearer {TOKEN}"}).status_code == 200
        )


def test_allowed_hosts_names_the_service(reloader: sr.Reloader[App]) -> None:
    """`allowed_hosts` replaces the loopback default: a service behind a proxy lists its
    name (a `*.` wildcard for subdomains), and `("*",)` turns the check off."""
    app = admin_app(reloader, token=TOKEN, allowed_hosts=["admin.example", "*.svc.example"])
    with Served(app, "127.0.0.1") as s, httpx.Client(base_url=s.url, timeout=10) as http:
        assert http.get("/status", headers={"Host": "admin.example"}).status_code == 200
        assert http.get("/status", headers={"Host": "a.svc.example:443"}).status_code == 200
        assert http.get("/status", headers={"Host": "evil.example"}).status_code == 400
        assert http.get("/status").status_code == 400  # 127.0.0.1 is no longer listed
    with Served(admin_app(reloader, token=TOKEN, allowed_hosts=("*",)), "127.0.0.1") as s:
        assert httpx.get(s.url + "/status", headers={"Host": "anything.example"}, timeout=10).status_code == 200


def test_ipv6_loopback_with_brackets(reloader: sr.Reloader[App]) -> None:
    """Served on ::1, the `Host: [::1]:PORT` a client sends is accepted (the default lists
    `::1`; the header brackets it)."""
    try:
        free_port(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with Served(admin_app(reloader, token=TOKEN), "::1") as s, httpx.Client(base_url=s.url, timeout=10) as http:
        assert http.get("/status").status_code == 200
        assert http.get("/status", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.parametrize(
    ("allowed", "error"),
    [
        ("localhost", TypeError),
        ((), ValueError),
        (("",), ValueError),
        (("*evil.example",), ValueError),
        (("a.*.example",), ValueError),
    ],
)
def test_allowed_hosts_refuses_what_would_not_work(reloader: sr.Reloader[App], allowed: Any, error: type) -> None:
    """A bare string, an empty list or name, a malformed wildcard: refused when the app is built."""
    with pytest.raises(error):
        admin_app(reloader, token=TOKEN, allowed_hosts=allowed)

"""`selreload.wsgi.PinMiddleware` and examples/flask_app.py under a real WSGI server (werkzeug's,
threaded), through a real HTTP client."""

from __future__ import annotations

import importlib
import pathlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import write_atomic
from werkzeug.serving import make_server

import selreload as sr
from selreload.wsgi import PinMiddleware

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
flask_app = importlib.import_module("examples.flask_app")


@pytest.fixture
def served(tmp_path: pathlib.Path) -> Iterator[tuple[Any, pathlib.Path, httpx.Client]]:
    cfg = tmp_path / "config.yaml"
    write_atomic(cfg, flask_app.DEFAULT_CONFIG)
    app = flask_app.create_app(cfg, watch=False)
    reloader = app.config["RELOADER"]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    with reloader:
        thread.start()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}", timeout=10) as client:
                yield reloader, cfg, client
        finally:
            server.shutdown()
            thread.join()


def edit(reloader: Any, cfg: pathlib.Path, old: str, new: str) -> None:
    write_atomic(cfg, cfg.read_text().replace(old, new))
    assert reloader.reload().outcome is sr.Outcome.APPLIED


def test_a_reload_reaches_the_next_request(served: Any) -> None:
    """The Flask view reads the pinned config: after a reload, the next request sees it."""
    reloader, cfg, client = served
    assert client.get("/hello").json() == {"greeting": "hello", "version": 1}
    edit(reloader, cfg, "greeting: hello", "greeting: bonjour")
    assert client.get("/hello").json() == {"greeting": "bonjour", "version": 2}


def test_a_streamed_body_keeps_its_snapshot_through_a_reload(served: Any) -> None:
    """A response streamed while a reload commits is produced from the snapshot pinned when
    the request began, to its last line."""
    reloader, cfg, client = served
    lines = []
    with client.stream("GET", "/stream", params={"pause": "0.05"}) as response:
        for i, line in enumerate(response.iter_lines()):
            lines.append(line)
            if i == 0:
                edit(reloader, cfg, "greeting: hello", "greeting: changed")
    assert lines == ["0 hello", "1 hello", "2 hello"]
    assert client.get("/hello").json()["greeting"] == "changed"


def test_allow_list_and_rate_limit_change_live(served: Any) -> None:
    """The allow list and the rate limit the example wires in take a reload at once."""
    reloader, cfg, client = served
    edit(reloader, cfg, 'allow: [127.0.0.0/8, "::1/128"]', "allow: [10.0.0.0/8]")
    assert client.get("/hello").status_code == 403
    edit(reloader, cfg, "allow: [10.0.0.0/8]", "allow: [127.0.0.1]")
    edit(reloader, cfg, "rate: 50\n  burst: 100", "rate: 0.01\n  burst: 2")
    codes = [client.get("/hello").status_code for _ in range(4)]
    assert codes[-1] == 429 and codes.count(200) <= 2


def test_requests_before_start_pass_through_unpinned(tmp_path: pathlib.Path) -> None:
    """Before start() there is no snapshot: the app is called as is."""

    @sr.config
    class C:
        x: int = sr.hot(default=1)

    reloader = sr.Reloader(C, sources=[])
    calls = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"ok"]

    assert PinMiddleware(app, reloader)({"PATH_INFO": "/"}, lambda *a: None) == [b"ok"]
    assert calls == ["/"]

"""A Flask service with live config: one snapshot per request, a live rate limit and allow list.

Run it (from the repository root):

    .venv/bin/python examples/flask_app.py flask-example/config.yaml

then edit `flask-example/config.yaml` (greeting, rate, allow list) and
`curl localhost:8002/hello`: the next request sees the change, no restart.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time
from typing import Any

import attrs
from flask import Flask, Response, jsonify, request, stream_with_context

import selreload as sr
from selreload import appliers
from selreload.wsgi import PinMiddleware


@sr.config
class RateLimitConfig:
    rate: float = sr.hot(default=50.0)
    burst: float = sr.hot(default=100.0)


@sr.config
class Settings:
    greeting: str = sr.hot(default="hello")
    page_size: int = sr.hot(default=3, validator=attrs.validators.ge(1))
    rate_limit: RateLimitConfig = sr.field(factory=RateLimitConfig)
    allow: list[str] = sr.hot(factory=lambda: ["127.0.0.0/8", "::1/128"])
    port: int = sr.restart_only(default=8002)


DEFAULT_CONFIG = """\
greeting: hello
page_size: 3
rate_limit:
  rate: 50
  burst: 100
allow: [127.0.0.0/8, "::1/128"]
"""


def create_app(config_path: str | os.PathLike[str], *, watch: bool = True) -> Flask:
    """The service: a Reloader, its appliers, and PinMiddleware around Flask's WSGI app.

    Start the reloader before serving (`app.config["RELOADER"].start()`) and stop it after.
    """
    reloader = sr.Reloader(Settings, sources=[sr.YamlFile(config_path, watch=watch)], name="flask-example")
    limit = reloader.on("rate_limit", appliers.RateLimit())
    allow = reloader.on("allow", appliers.NetworkList("allow"))

    app = Flask(__name__)
    app.config["RELOADER"] = reloader
    app.wsgi_app = PinMiddleware(app.wsgi_app, reloader)  # type: ignore[method-assign]

    @app.before_request
    def guard() -> Any:
        if not allow.allowed(request.remote_addr or "0.0.0.0"):
            return jsonify(error="not on the allow list"), 403
        if not limit.try_acquire():
            return jsonify(error="rate limited"), 429
        return None

    @app.get("/hello")
    def hello() -> Any:
        settings: Settings = reloader.pinned()
        return jsonify(greeting=settings.greeting, version=reloader.snapshot.version if reloader.snapshot else None)

    @app.get("/stream")
    def stream() -> Response:
        # A streamed body reads the snapshot pinned when the request began, to its last line,
        # even if a reload commits while it is being sent.
        def lines() -> Any:
            for i in range(reloader.pinned().page_size):
                yield f"{i} {reloader.pinned().greeting}\n"
                time.sleep(float(request.args.get("pause", "0")))

        return Response(stream_with_context(lines()), mimetype="text/plain")

    return app


def main(argv: list[str]) -> None:
    path = pathlib.Path(argv[1] if len(argv) > 1 else "flask-example/config.yaml")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DEFAULT_CONFIG, encoding="utf-8")
    app = create_app(path)
    reloader = app.config["RELOADER"]
    with reloader:
        app.run(host="127.0.0.1", port=reloader.current.port, threaded=True)


if __name__ == "__main__":
    main(sys.argv)

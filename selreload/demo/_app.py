"""`selreload demo`: a small web service built the way the docs say, on `AdrConfig`.

It watches a YAML file, applies hot changes through the four built-in appliers, rejects
restart-only ones as "restart pending", serves the admin endpoints and a few app
endpoints that read the live config, writes an audit log next to the config file, and
prints every reload as a short block.

What holds a secret is kept private: the config, the audit log and the generated admin
token (`admin-token` next to the config) are created 0600, the token is printed only to a
terminal, and a bind beyond loopback needs `--allow-remote`.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import pathlib
import secrets
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from .._audit import AuditLog
from .._errors import ConfigError, PolicyError
from .._package import POLICIES_DIR, MissingExtraError, need
from .._policy import PolicyInput
from .._present import Painter, narrate, narrate_denied
from .._reloader import Reloader
from .._result import Outcome, ReloadResult
from .._values import format_duration
from ..appliers import FeatureFlags, JwtTtl, LogLevel, Sampler
from ..asgi import LOOPBACK_HOSTS, PinMiddleware, admin_app
from ..sources import YamlFile
from ._config import ADR_POLICY, AdrConfig, write_default_config, write_private

TOKEN_ENV = "SELRELOAD_ADMIN_TOKEN"
TOKEN_FILE = "admin-token"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000

log = logging.getLogger("selreload.demo")


def policy() -> PolicyInput:
    """The shipped `selreload/policies/web-service.yaml`, else (a trimmed install) the same split in code."""
    file = POLICIES_DIR / "web-service.yaml"
    return file if file.is_file() else ADR_POLICY


class Narrator:
    """An audit log that also tells the terminal: every attempt that is recorded (all
    but UNCHANGED) and every refused admin call is printed as a short block."""

    def __init__(self, audit: AuditLog, out: TextIO) -> None:
        self.audit = audit
        self.out = out
        self.paint = Painter(out.isatty() and not os.environ.get("NO_COLOR"))

    def __repr__(self) -> str:
        return f"Narrator({self.audit!r})"

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def record(self, result: ReloadResult, *, config: str, digest: str | None) -> dict[str, Any]:
        try:
            return self.audit.record(result, config=config, digest=digest)
        finally:
            self._say(narrate(result, paint=self.paint))

    def recovered(self, result: ReloadResult) -> None:
        """Tell the terminal that a good attempt followed a failed one without changing
        anything (a broken file restored): no audit record, but the person fixing it
        wants to see that it worked."""
        self._say(narrate(result, paint=self.paint))

    def record_denied(self, *, config: str, actor: str | None, action: str, reason: str, **extra: Any) -> Any:
        try:
            return self.audit.record_denied(config=config, actor=actor, action=action, reason=reason, **extra)
        finally:
            self._say(narrate_denied(actor=actor or "unknown", action=action, reason=reason, paint=self.paint))


class Demo:
    """The demo service: a Reloader, its appliers, and the Starlette app that reads them."""

    def __init__(self, config_path: pathlib.Path, *, out: TextIO) -> None:
        self.config_path = config_path
        self.flags = FeatureFlags()
        self.sampler = Sampler()
        self.ttl = JwtTtl()
        # The live sampler decides which of the demo's spans (and reload spans) are sampled.
        self.tracer_provider = TracerProvider(sampler=self.sampler)
        self.tracer = self.tracer_provider.get_tracer("selreload.demo")
        self.audit = Narrator(AuditLog(config_path.parent / "audit.jsonl"), out)
        self.reloader: Reloader[AdrConfig] = Reloader(
            AdrConfig,
            sources=[YamlFile(config_path)],
            policies=policy(),
            audit=self.audit,
            tracer_provider=self.tracer_provider,
            name="demo",
        )
        # The app's own logger, not the root: at debug the root would also turn on every
        # library's debug logging (watchdog logs each file event it sees).
        self.reloader.on("logging.level", LogLevel(log.name))
        self.reloader.on("api.v2_enabled", self.flags)
        self.reloader.on("telemetry.sampler", self.sampler)
        self.reloader.on("auth.jwt.ttl", self.ttl)

    def app(self, *, token: str, allowed_hosts: Sequence[str] = LOOPBACK_HOSTS) -> Starlette:
        """The service's ASGI app: its own endpoints, then the admin ones (which accept
        only `allowed_hosts` in the `Host` header)."""
        app = Starlette(
            routes=[
                Route("/", self.index),
                Route("/token", self.issue_token),
                Route("/v2/hello", self.v2_hello),
                Mount("", app=admin_app(self.reloader, token=token, allowed_hosts=allowed_hosts)),
            ]
        )
        app.add_middleware(PinMiddleware, reloader=self.reloader)
        return app

    async def index(self, request: Request) -> Response:
        cfg = self.reloader.pinned()  # the snapshot pinned for this request
        with self.tracer.start_as_current_span("demo.index") as span:
            sampled = span.get_span_context().trace_flags.sampled
        log.debug("GET / at config v%s (you see this line because logging.level is debug)", self._version())
        return JSONResponse(
            {
                "config_version": self._version(),
                "logging": {"level": logging.getLevelName(log.level).lower()},
                "api": {"v2_enabled": self.flags.enabled("api.v2_enabled")},
                "telemetry": {"sampler": self.sampler.get_description(), "this_request_sampled": sampled},
                "auth": {"jwt_ttl": format_duration(self.ttl.ttl)},
                "server": {"host": cfg.server.host, "port": cfg.server.port},
                "restart_pending": [c.path for c in self.reloader.restart_pending],
            }
        )

    async def issue_token(self, request: Request) -> Response:
        ttl = self.ttl.ttl  # read once: one token, one lifetime
        now = datetime.datetime.now(datetime.UTC)
        return JSONResponse(
            {
                "token": "demo." + secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": int(ttl.total_seconds()),
                "expires_at": (now + ttl).isoformat(timespec="seconds"),
            }
        )

    async def v2_hello(self, request: Request) -> Response:
        if not self.flags.enabled("api.v2_enabled"):
            return JSONResponse({"error": "API v2 is off: set api.v2_enabled: true in the config"}, status_code=404)
        return JSONResponse({"hello": "from API v2"})

    def _version(self) -> int | None:
        snapshot = self.reloader.snapshot
        return snapshot.version if snapshot else None


class _NotNarrated(logging.Filter):
    # The narrator prints every reload outcome (`selreload.reload`) and every refused admin
    # call (`selreload.http`) as a block; the library's one-line log of the same event would
    # only repeat it. A record with a traceback is a failure the narrator never saw: keep it.
    NARRATED = frozenset({"selreload.reload", "selreload.http"})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name not in self.NARRATED or record.exc_info is not None


class _Recovered(logging.Handler):
    # The one outcome the narrator never sees: UNCHANGED is not audited, yet after a
    # failure it is news (the file was fixed). The library logs it with the result.
    def __init__(self, narrator: Narrator) -> None:
        super().__init__(logging.INFO)
        self.narrator = narrator

    def emit(self, record: logging.LogRecord) -> None:
        result = getattr(record, "selreload_result", None)
        if not (isinstance(result, ReloadResult) and getattr(record, "selreload_recovered", False)):
            return
        if result.outcome is Outcome.UNCHANGED:
            self.narrator.recovered(result)


def _setup_logging() -> None:
    # One format for everything the demo logs, uvicorn included (its own config is off,
    # and so is its access log: a Prometheus scrape every 2 s would flood the terminal).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(_NotNarrated())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1 (brackets allowed)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def admin_hosts(host: str) -> tuple[str, ...]:
    """The `Host` names the admin endpoints accept when the demo binds `host`: the
    loopback names and `host` itself; any name for a wildcard bind (0.0.0.0, ::), whose
    names the demo cannot know."""
    bare = host.strip("[]")
    if bare in ("", "0.0.0.0", "::"):
        return ("*",)
    return LOOPBACK_HOSTS if bare.lower() in LOOPBACK_HOSTS else (*LOOPBACK_HOSTS, bare)


def _refuse_remote(host: str, *, allow_remote: bool, err: TextIO) -> bool:
    """True (after saying why) when `host` is beyond loopback without `--allow-remote`;
    with it, a loud warning and False."""
    if is_loopback(host):
        return False
    if not allow_remote:
        print(
            f"selreload: error: the demo would serve on {host!r}, beyond loopback: its admin endpoints show"
            " the config and accept the admin token over plain HTTP. Use --host 127.0.0.1, or pass"
            " --allow-remote to serve there anyway.",
            file=err,
            flush=True,
        )
        return True
    checked = "any Host header is accepted" if admin_hosts(host) == ("*",) else f"Host must name {host}"
    print(
        f"WARNING: --allow-remote: serving on {host!r}, beyond loopback. Anyone who can reach it reads"
        f" GET /config, /status, /history and /metrics; the admin token travels in clear over HTTP;"
        f" {checked}. Use it on a network you trust, and only for the demo.",
        file=err,
        flush=True,
    )
    return False


def admin_token(directory: pathlib.Path) -> tuple[str, pathlib.Path | None]:
    """The admin token from `$SELRELOAD_ADMIN_TOKEN`, else a new one written to
    `directory/admin-token` (0600); returns it and the file, if one was written."""
    file = directory / TOKEN_FILE
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        file.unlink(missing_ok=True)  # a token file from an earlier run would be stale
        return token, None
    token = secrets.token_urlsafe(24)
    # Created 0600 under another name, then renamed over any older file: an existing file
    # keeps its mode when rewritten, and a reader never sees it half-written.
    tmp = directory / f".{TOKEN_FILE}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    write_private(tmp, token + "\n")
    os.replace(tmp, file)
    return token, file


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (IPv6 when `host` is), as uvicorn would bind it."""
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bare, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _banner(
    demo: Demo, *, host: str, port: int, token: str, token_file: pathlib.Path | None, terminal: bool
) -> Iterator[str]:
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    yield ""
    yield f"selreload demo on {url}"
    yield f"  config: {demo.config_path}   (watched: save it and watch this output)"
    yield f"  audit:  {demo.audit.audit.path}"
    if token_file is None:
        yield f"  admin token: from ${TOKEN_ENV}"
    elif terminal:
        # Shown once, to a person; a redirected stdout (a log file, CI) never gets it.
        yield f"  admin token: {token}   (generated, also in {token_file}; set {TOKEN_ENV} to choose one)"
    else:
        yield f"  admin token: in {token_file} (generated, 0600; set {TOKEN_ENV} to choose one)"
    yield ""
    yield "try:"
    yield f"  curl -s {url}/                 # what the app reads from the live config"
    yield f"  curl -s {url}/config           # the live config, secrets masked"
    yield f"  curl -s {url}/token            # a token with the live auth.jwt.ttl"
    yield f"  curl -s {url}/metrics | grep selreload_"
    if token_file is not None:
        yield f"  TOKEN=$(cat {token_file})"
    yield f'  curl -s -X POST -H "Authorization: Bearer $TOKEN" {url}/reload'
    yield "  then edit the config: logging.level (hot), server.port (restart-only), or break it"
    yield ""


def run(
    *,
    config: pathlib.Path,
    host: str | None = None,
    port: int | None = None,
    allow_remote: bool = False,
    out: TextIO | None = None,
) -> int:
    """Run the demo until SIGINT or SIGTERM; returns the exit code.

    A `host` (given, or the config's `server.host`) beyond loopback refuses to start
    unless `allow_remote`, and then warns.
    """
    out = out or sys.stdout
    try:
        uvicorn: Any = need("uvicorn", feature="selreload demo")
    except MissingExtraError as exc:
        print(f"selreload: error: {exc}", file=sys.stderr)
        return 1
    if host is not None and _refuse_remote(host, allow_remote=allow_remote, err=sys.stderr):
        return 1
    _setup_logging()
    if not config.exists():
        write_default_config(config, host=host or DEFAULT_HOST, port=port or DEFAULT_PORT)
        print(f"wrote a default config to {config}", file=out, flush=True)
    token, token_file = admin_token(config.parent)
    try:
        demo = Demo(config, out=out)
        logging.getLogger("selreload.reload").addHandler(_Recovered(demo.audit))
        demo.reloader.start()
    except (ConfigError, PolicyError) as exc:
        print(
            f"{exc}\nselreload: error: the demo cannot start with this config (fix it and run again)", file=sys.stderr
        )
        return 1
    try:
        live = demo.reloader.current.server
        if host is None and _refuse_remote(live.host, allow_remote=allow_remote, err=sys.stderr):
            return 1
        host = host or live.host
        port = port if port is not None else live.port
        # Bound before the banner: a busy port is one line, not a banner then Errno 98.
        try:
            sock = bind(host, port)
        except OSError as exc:
            print(
                f"selreload: error: cannot serve on {host}:{port}: {exc.strerror or exc}"
                f" (another demo running? pass --port N, or set server.port in {config})",
                file=sys.stderr,
            )
            return 1
        if hasattr(demo.reloader, "install_signal_handler"):
            demo.reloader.install_signal_handler(signal.SIGHUP)
        terminal = out.isatty()
        for line in _banner(demo, host=host, port=port, token=token, token_file=token_file, terminal=terminal):
            print(line, file=out, flush=True)
        app = demo.app(token=token, allowed_hosts=admin_hosts(host))
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=host, port=port, log_level="info", lifespan="off", access_log=False, log_config=None
            )
        )
        # uvicorn re-raises the signal that stopped it once it has shut down; handlers that
        # do nothing let us stop the watchers and exit 0 instead of dying by the signal.
        previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
    finally:
        demo.reloader.stop()
    print("selreload demo stopped", file=out, flush=True)
    return 0 if server.started else 1

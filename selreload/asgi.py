"""The admin HTTP app (`admin_app`) and `PinMiddleware`, for Starlette and FastAPI services.

    GET  /config               the live config, secrets masked, with its version
    GET  /status               reloader.status(); error texts only with the token
    GET  /history              the snapshots kept for rollback
    GET  /metrics              Prometheus exposition of the reloader's registry
    POST /reload               reload from the sources now            (bearer token)
    POST /rollback/{version}   make a kept snapshot live again        (bearer token)
                               (a version of this worker, or a content digest)
    POST /overrides            set or unset runtime overrides         (bearer token)

With a control directory (`Reloader(state_dir=...)`), POST /reload, /rollback and
/overrides act for every worker of the service and answer how many applied it (see
`selreload._workers`); without one they act on this process only.
    GET  /ui  (GET / redirects) the admin console: one offline HTML page
    GET  /explain              every leaf: path, value (masked), origin, policy
    GET  /history/{a}/diff/{b} the changes between two kept versions (masked)
    GET  /audit                the audit chain's state and last records (bearer token)

State-changing calls need `Authorization: Bearer <token>`: none gets 401, a wrong one 403,
both are audited with the caller as actor, and nothing runs. `GET /status` without a
token answers the health fields only; its error texts (`last_error`, `unhealthy_reasons`)
need the token too.

Every request is first checked against `allowed_hosts` (the `Host` header, port ignored;
loopback names by default): a web page whose name was rebound to 127.0.0.1 (DNS
rebinding) sends its own name, gets 400, and reads nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST

from ._package import missing

try:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from starlette.types import ASGIApp, Receive, Scope, Send
except ModuleNotFoundError as exc:  # without the extra: one line naming it
    raise missing(exc, feature="selreload.asgi") from None

from ._console import Console, JSONResponse
from ._errors import ConfigError
from ._mask import masked_plain
from ._metrics import exposition
from ._overrides_request import parse_override_request
from ._present import result_to_json
from ._reloader import Reloader
from ._result import Outcome
from ._statedir import Broadcast
from ._values import load_json

__all__ = ["LOOPBACK_HOSTS", "PinMiddleware", "admin_app"]

LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1")
"""The `Host` names `admin_app` accepts by default (any port)."""

# What `GET /status` tells a caller without the token: whether and what is live, never why
# it failed (an error text can quote a path, a value or an address). An allowlist: a field
# added to `status()` later stays behind the token until it is listed here.
_PUBLIC_STATUS: Final = frozenset(
    {
        "name",
        "instance",
        "state",
        "healthy",
        "version",
        "digest",
        "loaded_at",
        "last_outcome",
        "last_trigger",
        "restart_pending",
        "rollback_to",
    }
)

log = logging.getLogger("selreload.http")

# INVALID is the caller's document at fault; a failed applier is the service's.
_STATUS = {
    Outcome.APPLIED: 200,
    Outcome.UNCHANGED: 200,
    Outcome.REJECTED: 200,
    Outcome.INVALID: 422,
    Outcome.ROLLED_BACK: 500,
    Outcome.DEGRADED: 500,
}


def _caller(request: Request) -> str:
    client = request.client
    return client.host if client is not None else "unknown"


class _Admin:
    """The endpoints of one admin app; a class so the token never sits in a closure repr."""

    def __init__(self, reloader: Reloader[Any], token: str, audit: Any) -> None:
        self.reloader = reloader
        # Compare digests, not the strings: equal lengths, so timing says nothing about
        # the token's length either.
        self._token_digest = hashlib.sha256(token.encode("utf-8")).digest()
        self.audit = audit

    def __repr__(self) -> str:
        return f"<selreload admin for {self.reloader!r}>"

    def _denied(self, request: Request, action: str) -> Response | None:
        """None when the bearer token is right; otherwise the 401/403 response, audited."""
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            status, reason = 401, "missing bearer token"
        elif not hmac.compare_digest(hashlib.sha256(given.strip().encode("utf-8")).digest(), self._token_digest):
            status, reason = 403, "wrong bearer token"
        else:
            return None
        actor = _caller(request)
        log.warning("config %r: %s denied to %s: %s", self.reloader.name, action, actor, reason)
        if self.audit is not None:
            try:
                self.audit.record_denied(
                    config=self.reloader.name,
                    actor=actor,
                    action=action,
                    reason=reason,
                    instance=self.reloader.instance,
                )
            except Exception:
                log.exception("config %r: could not audit a denied %s", self.reloader.name, action)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": reason}, status_code=status, headers=headers)

    async def config(self, request: Request) -> Response:
        snapshot = self.reloader.snapshot
        if snapshot is None:
            return JSONResponse({"error": "no config loaded yet"}, status_code=503)
        return JSONResponse(
            {
                "version": snapshot.version,
                "digest": snapshot.digest,
                "loaded_at": snapshot.loaded_at.isoformat(),
                "instance": self.reloader.instance,
                "config": masked_plain(snapshot.config, schema=self.reloader.schema),
                **({"overrides": workers.status()} if (workers := self.reloader.workers) is not None else {}),
            }
        )

    async def status(self, request: Request) -> Response:
        status = self.reloader.status()
        code = 200 if status["healthy"] else 503
        if "authorization" in request.headers:
            # A token was sent: it must be the right one (a wrong one is refused and
            # audited like any other), and then the caller sees everything.
            denied = self._denied(request, "GET /status")
            return denied if denied is not None else JSONResponse(status, status_code=code)
        public = {k: v for k, v in status.items() if k in _PUBLIC_STATUS}
        public["withheld"] = sorted(status.keys() - _PUBLIC_STATUS)
        return JSONResponse(public, status_code=code)

    async def history(self, request: Request) -> Response:
        return JSONResponse(
            [
                {"version": s.version, "digest": s.digest, "loaded_at": s.loaded_at.isoformat()}
                for s in self.reloader.history
            ]
        )

    async def metrics(self, request: Request) -> Response:
        return Response(exposition(self.reloader.registry), media_type=CONTENT_TYPE_LATEST)

    async def reload(self, request: Request) -> Response:
        denied = self._denied(request, "POST /reload")
        if denied is not None:
            return denied
        workers = self.reloader.workers
        if workers is not None:
            answer = await run_in_threadpool(lambda: workers.reload(actor=_caller(request)))
            return _broadcast(answer)
        # Appliers may block (and the reload lock may be held by a watcher): off the loop.
        result = await run_in_threadpool(self.reloader.reload, "http", _caller(request))
        return JSONResponse(result_to_json(result), status_code=_STATUS[result.outcome])

    async def rollback(self, request: Request) -> Response:
        version = request.path_params["version"]
        denied = self._denied(request, f"POST /rollback/{version}")
        if denied is not None:
            return denied
        workers = self.reloader.workers
        try:
            if workers is not None:
                answer = await run_in_threadpool(lambda: workers.rollback(version, actor=_caller(request)))
                return _broadcast(answer)
            result = await run_in_threadpool(lambda: self.reloader.rollback(version, actor=_caller(request)))
        except KeyError as exc:
            return JSONResponse({"error": exc.args[0] if exc.args else str(exc)}, status_code=404)
        return JSONResponse(result_to_json(result), status_code=_STATUS[result.outcome])

    async def overrides(self, request: Request) -> Response:
        denied = self._denied(request, "POST /overrides")
        if denied is not None:
            return denied
        workers = self.reloader.workers
        if workers is None:
            return JSONResponse({"error": "runtime overrides need a control directory (state_dir=)"}, status_code=404)
        try:
            body = load_json(await request.body())
        except ValueError:  # not JSON, not UTF-8, or nested past the decoder's depth
            body = None
        try:
            change = parse_override_request(body)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        actor = f"{change.actor or 'http'}({_caller(request)})"
        problems = workers.check(change.values, change.unset)
        if problems:
            restart = any("restart-only" in i.message for i in problems)
            return JSONResponse(
                {"error": "refused", "errors": [str(i) for i in problems]}, status_code=409 if restart else 422
            )

        def run() -> Broadcast:
            if change.values:
                return workers.set(change.values, actor=actor, ttl=change.ttl)
            return workers.unset(change.unset, actor=actor)

        try:
            answer = await run_in_threadpool(run)
        except ConfigError as exc:  # refused between the check and the write
            return JSONResponse({"error": "refused", "errors": [str(i) for i in exc.issues]}, status_code=422)
        return _broadcast(answer)


def _broadcast(answer: Broadcast) -> Response:
    # 200: every live worker applied it; 409: one refused (an override is then taken back);
    # 202: not every worker answered in time (it may still apply).
    status = 409 if answer.refused else 202 if answer.pending else 200
    return JSONResponse(answer.to_json(), status_code=status)


def admin_app(
    reloader: Reloader[Any],
    *,
    token: str,
    audit: Any = None,
    allowed_hosts: Iterable[str] = LOOPBACK_HOSTS,
) -> Starlette:
    """A Starlette app to inspect and drive `reloader` over HTTP.

    Mount it in your service (`app.mount("/admin", admin_app(reloader, token=...))`) or
    serve it on its own, on loopback.

    Args:
        reloader: the Reloader to expose.
        token: the bearer token that `POST /reload` and `POST /rollback/{version}` need,
            and that `GET /status` needs to show error texts.
        audit: where denied calls are recorded (default: `reloader.audit`).
        allowed_hosts: the names the `Host` header may carry (port ignored; IPv6 with or
            without brackets; `"*.example.com"` for subdomains); any other gets 400
            before auth or routing. Default: loopback only. Behind a proxy or on a real
            name, list that name; `("*",)` turns the check off.

    Raises:
        ValueError: `token` is empty (an admin app nobody can be refused by is not built).
    """
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, got {type(token).__name__}")
    if not token.strip():
        raise ValueError("admin_app needs a non-empty token: state-changing calls must be authenticated")
    admin = _Admin(reloader, token.strip(), audit if audit is not None else reloader.audit)
    return Starlette(
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=_host_patterns(allowed_hosts), www_redirect=False)],
        routes=[
            Route("/config", admin.config, methods=["GET"]),
            Route("/status", admin.status, methods=["GET"]),
            Route("/history", admin.history, methods=["GET"]),
            Route("/metrics", admin.metrics, methods=["GET"]),
            Route("/reload", admin.reload, methods=["POST"]),
            Route("/rollback/{version}", admin.rollback, methods=["POST"]),
            Route("/overrides", admin.overrides, methods=["POST"]),
            # The console (GET / and /ui) and the JSON only it reads.
            *Console(reloader, admin.audit, admin._denied).routes(),
        ],
    )


def _host_patterns(allowed_hosts: Iterable[str]) -> list[str]:
    """The `TrustedHostMiddleware` patterns for `allowed_hosts`: the `Host` header carries
    an IPv6 literal in brackets (`[::1]:8000`), so `::1` also stands for `[::1]`."""
    if isinstance(allowed_hosts, str):
        raise TypeError(f"allowed_hosts must be a sequence of names, got the str {allowed_hosts!r}")
    patterns: list[str] = []
    for host in allowed_hosts:
        name = host.strip().lower()
        if not name:
            raise ValueError("allowed_hosts: an empty name")
        # Checked here: the middleware only asserts it, and `python -O` strips asserts.
        if "*" in name[1:] or (name.startswith("*") and name != "*" and not name.startswith("*.")):
            raise ValueError(f"allowed_hosts: {host!r}: a wildcard must look like '*.example.com'")
        patterns.append(f"[{name}]" if ":" in name and not name.startswith("[") else name)
    if not patterns:
        raise ValueError("allowed_hosts is empty: no request could reach the admin app (use ('*',) to allow any)")
    return patterns


class PinMiddleware:
    """ASGI middleware pinning one config snapshot per request.

    Inside a request, `reloader.pinned()` returns the snapshot live when the request
    started, whatever reloads happen before it ends; sync endpoints run in threads that
    copy the context, so they see the pin too.
    """

    def __init__(self, app: ASGIApp, reloader: Reloader[Any]) -> None:
        self.app = app
        self.reloader = reloader

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.reloader.snapshot is None:
            # Lifespan events, or requests before start(): there is no snapshot to pin yet.
            await self.app(scope, receive, send)
            return
        with self.reloader.pin():
            await self.app(scope, receive, send)

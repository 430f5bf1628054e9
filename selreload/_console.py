"""The admin console: one offline HTML page (`GET /ui`) and the JSON it reads besides the
admin app's own (`GET /explain`, `GET /history/{a}/diff/{b}`, `GET /audit`).

Every value shown goes through `_mask`: the page never gets a secret to hide.
"""

from __future__ import annotations

import collections
import importlib.resources
import json
import os
import secrets
from collections.abc import Callable
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.responses import JSONResponse as _StarletteJSON
from starlette.routing import Route

from ._audit_read import scan_audit, verify_audit
from ._diff import Flattener, diff
from ._mask import plain, show
from ._present import change_to_json
from ._values import version_number


class JSONResponse(_StarletteJSON):
    """Starlette's JSON response, in UTF-8 that any string fits: an unpaired surrogate (a
    file name of undecodable bytes, a JSON `\\ud800` escape) is sent as its JSON escape,
    where Starlette's strict encoding turned the whole answer into a 500."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


_AUDIT_SHOWN: Final = 20

Denied = Callable[[Request, str], "Response | None"]


def _page() -> str:
    return importlib.resources.files("selreload").joinpath("_console.html").read_text(encoding="utf-8")


class Console:
    """The console's endpoints for one admin app: `denied` is its bearer-token check."""

    def __init__(self, reloader: Any, audit: Any, denied: Denied) -> None:
        self.reloader = reloader
        self.audit = audit
        self._denied = denied
        self._html = _page()

    def routes(self) -> list[Route]:
        return [
            Route("/", self.root, methods=["GET"]),
            Route("/ui", self.ui, methods=["GET"]),
            Route("/explain", self.explain, methods=["GET"]),
            # Text, not `{a:int}`: Starlette's int() raised on 5,000 digits (a 500).
            Route("/history/{a}/diff/{b}", self.diff, methods=["GET"]),
            Route("/audit", self.audit_view, methods=["GET"]),
        ]

    async def root(self, request: Request) -> Response:
        # Relative to where the app is mounted (`/admin` -> `/admin/ui`).
        return RedirectResponse(request.scope.get("root_path", "") + "/ui", status_code=307)

    async def ui(self, request: Request) -> Response:
        # A nonce per response: only the page's own inline script and style run, nothing
        # injected; no external origin is allowed at all (it works offline, by design).
        nonce = secrets.token_urlsafe(16)
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        return HTMLResponse(
            self._html.replace("{{nonce}}", nonce),
            headers={
                "Content-Security-Policy": csp,
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
                "X-Frame-Options": "DENY",
            },
        )

    async def explain(self, request: Request) -> Response:
        """Every leaf of the live config: path, value (masked), origin, policy, secret."""
        snapshot = self.reloader.snapshot
        if snapshot is None:
            return JSONResponse({"error": "no config loaded yet"}, status_code=503)
        schema = self.reloader.schema
        # Origins may need a round-trip parse of the sources: off the loop.
        return JSONResponse(await run_in_threadpool(_explain, schema, snapshot))

    async def diff(self, request: Request) -> Response:
        """The changes from version `a` to version `b` of `history`, secrets masked."""
        kept = {s.version: s for s in self.reloader.history}
        found = []
        for text in (request.path_params["a"], request.path_params["b"]):
            version = version_number(text)
            if version is None or version not in kept:
                versions = ", ".join(str(v) for v in sorted(kept))
                what = version if version is not None else show(text, secret=False)
                return JSONResponse({"error": f"version {what} is not in history (kept: {versions})"}, status_code=404)
            found.append(version)
        a, b = found
        flatten = Flattener(self.reloader.schema)
        changes = diff(flatten(kept[a].config), flatten(kept[b].config), self.reloader.schema)
        return JSONResponse({"from": a, "to": b, "changes": [change_to_json(c) for c in changes]})

    async def audit_view(self, request: Request) -> Response:
        """The audit chain's state and its last records (bearer token: records carry
        actors and error texts)."""
        denied = self._denied(request, "GET /audit")
        if denied is not None:
            return denied
        if self.audit is None or not hasattr(self.audit, "path"):
            return JSONResponse({"configured": False})
        return JSONResponse(await run_in_threadpool(_audit_state, self.audit))


def _explain(schema: Any, snapshot: Any) -> list[dict[str, Any]]:
    flat = Flattener(schema)(snapshot.config)
    origins = snapshot.origins
    rows = []
    for path, value in flat.items():
        policy, secret = schema.policy_of(path)
        rows.append(
            {
                "path": path,
                "value": plain(value, secret=secret),
                "origin": origins.get(path, "default"),
                "policy": policy.value,
                "secret": secret,
            }
        )
    return rows


def _audit_state(audit: Any) -> dict[str, Any]:
    path = os.fspath(audit.path)
    if not os.path.exists(path):
        return {"configured": True, "path": path, "ok": True, "records": 0, "last": []}
    key = getattr(audit, "_key", None)
    check = verify_audit(path, key=key)
    last: collections.deque[dict[str, Any]] = collections.deque(maxlen=_AUDIT_SHOWN)
    for line in scan_audit(path, key=key):
        if line.record is not None:
            last.append({"line": line.number, "verdict": line.kind or "ok", **line.record})
    return {
        "configured": True,
        "path": path,
        "ok": check.ok,
        "records": check.records,
        "first_bad": check.first_bad,
        "reason": check.reason,
        "last_hash": check.last_hash,
        "torn": len(check.torn),
        "last": list(last),
    }

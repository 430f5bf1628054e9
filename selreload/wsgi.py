"""`PinMiddleware` for WSGI apps (Flask, Django, anything PEP 3333): one snapshot per request.

app.wsgi_app = PinMiddleware(app.wsgi_app, reloader)            # Flask
application = PinMiddleware(get_wsgi_application(), reloader)   # Django wsgi.py
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._reloader import Reloader

__all__ = ["PinMiddleware"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Pinned:
    """The response body, iterated in the request's context, pin included, until `close()`.

    A streamed body (a generator view) is produced after the app returned: it must read
    the same snapshot as the view did. A WSGI server may iterate in another context than
    the call's (a thread pool, a greenlet), so each chunk is produced inside the context
    the view ran in; the snapshot stays referenced until the server drops the body.
    Its own iterator (`__next__`), not a generator: one frame less per request and chunk.
    """

    __slots__ = ("_body", "_context", "_iterator")

    def __init__(self, body: Iterable[bytes], context: contextvars.Context) -> None:
        self._body = body
        self._context = context

    def __iter__(self) -> Iterator[bytes]:
        self._iterator = self._context.run(iter, self._body)
        return self

    def __next__(self) -> bytes:
        # StopIteration from the body's iterator ends the iteration, as it should.
        return self._context.run(next, self._iterator)  # type: ignore[no-any-return]

    def close(self) -> None:
        # PEP 3333: the server calls close() once, after the response (or a disconnect).
        close = getattr(self._body, "close", None)
        if close is not None:
            self._context.run(close)


class PinMiddleware:
    """WSGI middleware pinning one config snapshot per request.

    Inside the request (the view and the iteration of its response body, streamed ones
    included), `reloader.pinned()` returns the snapshot live when the request started,
    whatever reloads happen before it ends. Requests before `start()` pass through unpinned.

    Args:
        app: the WSGI application to wrap.
        reloader: the Reloader whose snapshot to pin.
    """

    def __init__(self, app: WSGIApp, reloader: Reloader[Any]) -> None:
        self.app = app
        self.reloader = reloader

    def __repr__(self) -> str:
        return f"<selreload.wsgi.PinMiddleware {self.app!r} {self.reloader!r}>"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        reloader = self.reloader
        snapshot = reloader.snapshot
        if snapshot is None:
            return self.app(environ, start_response)
        # The request's own context, the live snapshot pinned in it: the view runs in it,
        # and so does every later step of its body. Set in the copy, not through a
        # `with pin()` around the copy (set, copy, reset): half the ContextVar work, and
        # the server's thread context is never touched. A pin already set (a middleware
        # nested in another) is kept, as nested pins keep the outer snapshot.
        context = contextvars.copy_context()
        var = reloader._pin
        if var.get() is None:
            context.run(var.set, snapshot)
        return _Pinned(context.run(self.app, environ, start_response), context)

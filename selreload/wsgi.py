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
    """

    __slots__ = ("_body", "_context")

    def __init__(self, body: Iterable[bytes], context: contextvars.Context) -> None:
        self._body = body
        self._context = context

    def __iter__(self) -> Iterator[bytes]:
        iterator = self._context.run(iter, self._body)
        while True:
            try:
                chunk = self._context.run(next, iterator)
            except StopIteration:
                return
            yield chunk

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
        if self.reloader.snapshot is None:
            return self.app(environ, start_response)
        with self.reloader.pin():
            # The request's own context, pin set: the view runs in it, and so does every
            # later step of its body (the pin ends here for the server's thread).
            context = contextvars.copy_context()
        return _Pinned(context.run(self.app, environ, start_response), context)

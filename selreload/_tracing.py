"""OpenTelemetry spans: `selreload.reload` per attempt, `selreload.apply` and
`selreload.rollback` per applier call. Nothing at all when no provider is configured."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from ._result import ReloadResult

_ENV_PROVIDER = "OTEL_PYTHON_TRACER_PROVIDER"  # a provider opentelemetry loads by name
_UNKNOWN = object()  # opentelemetry without the module global: ask it every time
_STATUS_LIMIT = 1000  # span backends truncate or drop long descriptions anyway
# Tracing off: the span "context manager" is a shared nullcontext (a generator-based one
# costs ~1 us to enter and leave, twice per applier call).
_OFF: contextlib.nullcontext[None] = contextlib.nullcontext()


class Tracing:
    """Spans for one Reloader.

    Exceptions are never recorded as span events: their text may quote a secret. A
    failed step gets status ERROR with the exception's type name; a failed reload gets
    the result's error lines, which the Reloader has already scrubbed of secrets.

    Args:
        provider: the TracerProvider to use; `None` uses the global one once the app has
            set it, and costs one provider lookup per reload until then.
    """

    def __init__(self, provider: trace.TracerProvider | None, *, instance: Callable[[], str] | None = None) -> None:
        self._provider = provider
        self._instance = instance
        self._tracer: trace.Tracer | None = provider.get_tracer("selreload") if provider else None
        # The answer of the last reload span: off. Its steps (applier calls) follow it, so a
        # provider set during a reload does not give it step spans without a parent.
        self._off = False
        self._env_provider = _ENV_PROVIDER in os.environ

    def _get(self) -> trace.Tracer | None:
        if self._tracer is not None:
            return self._tracer
        if self._provider is None:
            # Looked up on every reload, not once: apps often set the global provider
            # after building their Reloader. While none is set, `get_tracer_provider()`
            # asks the environment for OTEL_PYTHON_TRACER_PROVIDER each time (~3 us, a
            # KeyError raised and caught inside `os.environ`): read the module's global
            # first, and the environment only if it named a provider when this began.
            if getattr(trace, "_TRACER_PROVIDER", _UNKNOWN) is None and not self._env_provider:
                return None
            glob = trace.get_tracer_provider()
            if isinstance(glob, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
                return None
            self._tracer = glob.get_tracer("selreload")
        return self._tracer

    def reload(self, trigger: str) -> contextlib.AbstractContextManager[Any]:
        """The `selreload.reload` span of one attempt (`None` when tracing is off)."""
        tracer = self._get()
        self._off = tracer is None
        if tracer is None:
            return _OFF
        attributes = {"selreload.trigger": trigger}
        if self._instance is not None:
            attributes["selreload.instance"] = self._instance()
        return self._span(tracer, "selreload.reload", attributes)

    def finish(self, span: Any, result: ReloadResult | None) -> None:
        """Put the outcome on a reload span; failed outcomes get status ERROR."""
        if span is None or result is None:
            return
        attributes = {
            "selreload.version": result.version,
            "selreload.outcome": result.outcome.value,
            "selreload.changes": len(result.applied) + len(result.rejected),
        }
        if result.rejected:
            attributes["selreload.rejected"] = len(result.rejected)
        span.set_attributes(attributes)  # one lock round trip instead of one per attribute
        if not result.outcome.ok:
            text = "; ".join(str(e) for e in result.errors) or result.outcome.value
            span.set_status(Status(StatusCode.ERROR, text[:_STATUS_LIMIT]))

    def step(self, kind: str, applier: str) -> contextlib.AbstractContextManager[Any]:
        """A `selreload.apply` or `selreload.rollback` span around one applier call."""
        tracer = None if self._off and self._tracer is None else self._get()
        if tracer is None:
            return _OFF
        return self._span(tracer, f"selreload.{kind}", {"selreload.applier": applier})

    @contextlib.contextmanager
    def _span(self, tracer: trace.Tracer, name: str, attributes: dict[str, Any]) -> Iterator[Any]:
        with tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield span
            except Exception as exc:
                failed(span, type(exc).__name__)
                raise


def failed(span: Any, reason: str) -> None:
    """Mark a `selreload.apply`/`rollback` span failed: `reason` is an exception's type name,
    never its text (which may quote a secret)."""
    span.set_status(Status(StatusCode.ERROR, reason))

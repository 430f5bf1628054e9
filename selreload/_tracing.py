"""OpenTelemetry spans: `selreload.reload` per attempt, `selreload.apply` and
`selreload.rollback` per applier call. Nothing at all when no provider is configured."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from ._result import Outcome, ReloadResult

_FAILED = (Outcome.INVALID, Outcome.ROLLED_BACK, Outcome.DEGRADED)


class Tracing:
    """Spans for one Reloader.

    Args:
        provider: the TracerProvider to use; `None` uses the global one once the app has
            set it, and costs nothing until then.
    """

    def __init__(self, provider: trace.TracerProvider | None) -> None:
        self._provider = provider
        self._tracer: trace.Tracer | None = provider.get_tracer("selreload") if provider else None

    def _get(self) -> trace.Tracer | None:
        if self._tracer is not None:
            return self._tracer
        if self._provider is None:
            glob = trace.get_tracer_provider()
            if isinstance(glob, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
                return None
            self._tracer = glob.get_tracer("selreload")
        return self._tracer

    @contextlib.contextmanager
    def reload(self, trigger: str) -> Iterator[Any]:
        tracer = self._get()
        if tracer is None:
            yield None
            return
        with tracer.start_as_current_span(
            "selreload.reload",
            attributes={"selreload.trigger": trigger},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    def finish(self, span: Any, result: ReloadResult) -> None:
        if span is None:
            return
        span.set_attribute("selreload.version", result.version)
        span.set_attribute("selreload.outcome", result.outcome.value)
        span.set_attribute("selreload.changes", len(result.applied) + len(result.rejected))
        if result.outcome in _FAILED:
            span.set_status(Status(StatusCode.ERROR, "; ".join(str(e) for e in result.errors)[:1000]))

    @contextlib.contextmanager
    def step(self, kind: str, applier: str) -> Iterator[Any]:
        tracer = self._get()
        if tracer is None:
            yield None
            return
        with tracer.start_as_current_span(
            f"selreload.{kind}",
            attributes={"selreload.applier": applier},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except Exception as exc:
                # The exception text may quote a secret: record its type only.
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise

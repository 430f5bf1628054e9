"""Recording what a reload attempt did: one fan-out to every output, one error policy.

A `Recorder` gets every attempt's `ReloadResult` and the `Live` state after it. The
contract (as OpenTelemetry's `SpanProcessor` states its own):

- it runs on the thread that ran the reload, while that thread holds the Reloader's
  write lock, after the commit (or after the failed attempt left the live config alone),
  in the order the recorders were given;
- it must not raise and must not block for long: the fan-out catches any `Exception`,
  logs it on `selreload.record` (by type, never by text: a message may quote a secret)
  and goes on with the next recorder, so one broken output never hides the others.

The outputs a Reloader records to are recorders too: metrics, the log line, the sources
that report (etcd ACK/NACK) and the subscribers. The audit log is not: it is written
before the commit (`_pipeline`), so a change that cannot be recorded can be refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ._log import log_result
from ._mask import exc_summary
from ._result import Outcome, ReloadResult

if TYPE_CHECKING:
    from ._live import Live
    from ._metrics import Metrics
    from ._typing import Reporter

log = logging.getLogger("selreload.record")


@runtime_checkable
class Recorder(Protocol):
    """An output of every reload attempt; see the module docstring for its contract."""

    def record(self, result: ReloadResult, live: Live[Any]) -> None: ...


class Fanout:
    """Calls every recorder in order; a recorder that raises is logged and skipped."""

    __slots__ = ("_name", "recorders")

    def __init__(self, recorders: Iterable[Recorder], *, name: str) -> None:
        self.recorders: list[Recorder] = list(recorders)
        self._name = name

    def __call__(self, result: ReloadResult, live: Live[Any]) -> None:
        for recorder in self.recorders:
            try:
                recorder.record(result, live)
            except Exception as exc:  # noqa: BLE001 - the contract: never let one output stop the rest
                failed(self._name, recorder, exc)


def failed(name: str, what: object, exc: BaseException) -> None:
    """Log a failure of a user-supplied callback: its type and where, never its text."""
    log.error("config %r: %r failed with %s", name, what, exc_summary(exc))


class MetricsRecorder:
    """Prometheus: the attempt's outcome and duration, version, restart pending, failures."""

    __slots__ = ("_metrics",)

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def __repr__(self) -> str:
        return "<metrics>"

    def record(self, result: ReloadResult, live: Live[Any]) -> None:
        for applier in result.failed:
            self._metrics.applier_failed(applier)
        self._metrics.observe(result, restart_pending=len(live.restart_pending), ts=time.time())


class LogRecorder:
    """One log line per attempt on `selreload.reload` (see `log_result`); the first good
    attempt after a failed one says so, even when it changes nothing (a file restored)."""

    __slots__ = ("_failing", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._failing = False

    def __repr__(self) -> str:
        return "<log>"

    def record(self, result: ReloadResult, live: Live[Any]) -> None:
        recovered = self._failing and result.outcome.ok
        self._failing = not result.outcome.ok
        log_result(result, name=self._name, recovered=recovered)


class ReporterRecorder:
    """Tells a source that reports (etcd writes its ACK/NACK) how the attempt ended."""

    __slots__ = ("_source",)

    def __init__(self, source: Reporter) -> None:
        self._source = source

    def __repr__(self) -> str:
        return f"<report to {self._source!r}>"

    def record(self, result: ReloadResult, live: Live[Any]) -> None:
        if live.snapshot is not None:
            self._source.report(result, live.snapshot)


class SubscriberRecorder:
    """Calls the subscribers after every committed reload (not the one at start)."""

    __slots__ = ("_name", "_subscribers")

    def __init__(self, subscribers: Sequence[Callable[[ReloadResult], None]], name: str) -> None:
        self._subscribers = subscribers
        self._name = name

    def __repr__(self) -> str:
        return "<subscribers>"

    def record(self, result: ReloadResult, live: Live[Any]) -> None:
        if result.outcome is not Outcome.APPLIED or result.trigger == "start":
            return
        for callback in list(self._subscribers):
            try:
                callback(result)
            except Exception as exc:  # noqa: BLE001 - one subscriber must not starve the next
                failed(self._name, callback, exc)

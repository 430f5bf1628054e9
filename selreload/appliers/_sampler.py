"""`Sampler`: an OpenTelemetry sampler whose inner sampler a reload swaps atomically."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from .._change import Change
from .._package import missing
from .._snapshot import Snapshot
from ._common import Undo, paths_of, section_values

try:
    from opentelemetry.sdk.trace import sampling
except ModuleNotFoundError as exc:  # the SDK is the `otel` extra: one line naming it
    raise missing(exc, feature="appliers.Sampler") from None

# The names of OTEL_TRACES_SAMPLER, so a config reads like the environment variable.
_BUILDERS: Final[dict[str, Callable[[float | None], sampling.Sampler]]] = {
    "always_on": lambda _r: sampling.ALWAYS_ON,
    "always_off": lambda _r: sampling.ALWAYS_OFF,
    "traceidratio": lambda r: sampling.TraceIdRatioBased(_need(r)),
    "parentbased_always_on": lambda _r: sampling.ParentBased(sampling.ALWAYS_ON),
    "parentbased_always_off": lambda _r: sampling.ParentBased(sampling.ALWAYS_OFF),
    "parentbased_traceidratio": lambda r: sampling.ParentBased(sampling.TraceIdRatioBased(_need(r))),
}
TYPES: Final = tuple(_BUILDERS)


def _need(ratio: float | None) -> float:
    if ratio is None:
        raise ValueError("this sampler type needs a ratio")
    return ratio


@attrs.frozen
class _State:
    type: str | None
    ratio: float | None
    inner: sampling.Sampler


def build(type_: Any, ratio: Any, path: str = "sampler") -> sampling.Sampler:
    """The SDK sampler for a `type` name and a `ratio`.

    Raises:
        ValueError: an unknown type, a ratio that is not a number in [0, 1], or no ratio
            for a ratio-based type.
    """
    if not isinstance(type_, str) or type_.strip().lower() not in _BUILDERS:
        raise ValueError(f"{path}.type: unknown sampler type {type_!r}; expected one of {', '.join(TYPES)}")
    if ratio is not None:
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not math.isfinite(ratio):
            raise ValueError(f"{path}.ratio: expected a number between 0 and 1, got {ratio!r}")
        if not 0 <= ratio <= 1:
            raise ValueError(f"{path}.ratio: must be between 0 and 1, got {ratio!r}")
    try:
        return _BUILDERS[type_.strip().lower()](None if ratio is None else float(ratio))
    except ValueError as exc:
        raise ValueError(f"{path}: {type_!r} {exc}") from None


class Sampler(sampling.Sampler):
    """An OpenTelemetry SDK sampler that delegates to an inner sampler a reload replaces.

    Pass it to the `TracerProvider` once, and register it at the config section holding
    `type` and `ratio` (`reloader.on("telemetry.sampler", sampler)`): it gets both in one
    call, and reads from the new snapshot whichever of the two did not change. Types are
    those of `OTEL_TRACES_SAMPLER`: `always_on`, `always_off`, `traceidratio`,
    `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio`.

    The swap is one reference assignment: a span being sampled uses the old inner sampler
    or the new one, never a mix. Rollback puts back the exact inner sampler object.

    Args:
        default: the inner sampler until the config is applied.
        name: how metrics, spans and errors name this applier.
    """

    def __init__(self, default: sampling.Sampler | None = None, *, name: str = "Sampler") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._undo: Undo[_State] = Undo()
        inner = default if default is not None else sampling.ParentBased(sampling.ALWAYS_ON)
        self._state = _State(None, None, inner)

    @property
    def inner(self) -> sampling.Sampler:
        """The sampler spans are sampled with right now."""
        return self._state.inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> sampling.SamplingResult:
        return self._state.inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return self._state.inner.get_description()

    def __repr__(self) -> str:
        state = self._state
        return (
            f"<Sampler {self.name!r} type={state.type!r} ratio={state.ratio!r} inner={state.inner.get_description()}>"
        )

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Build the inner sampler from `type` and `ratio` and swap it in; raises
        `ValueError` (changing nothing) on an unknown type or a ratio outside [0, 1]."""
        with self._lock:
            state = self._resolve(changes, snapshot, self._state, use_old=False)
            self._undo.push(paths_of(changes), self._state)
            self._state = state

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Swap back the inner sampler that was live before `apply`."""
        with self._lock:
            previous = self._undo.pop(paths_of(changes))
            if previous is None:  # never applied here: rebuild from the snapshot that stays
                previous = self._resolve(changes, snapshot, self._state, use_old=True)
            self._state = previous

    def _resolve(self, changes: Sequence[Change], snapshot: Snapshot[Any], live: _State, use_old: bool) -> _State:
        tracked = {"type": live.type, "ratio": live.ratio}
        prefix, values = section_values(changes, snapshot, tracked, name=self.name, use_old=use_old)
        if values["type"] is None:
            raise ValueError(f"{prefix or 'sampler'}.type: no sampler type configured")
        inner = build(values["type"], values["ratio"], prefix or "sampler")
        return _State(values["type"].strip().lower(), values["ratio"], inner)

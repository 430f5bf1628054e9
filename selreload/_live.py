"""`Live`: everything the Reloader knows about what is running, as one immutable value.

A reload builds the next `Live` and swaps it in with one assignment, so `status()` and
every recorder read a consistent state: never a new version beside the previous outcome.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import attrs

from ._change import Change
from ._diff import Flat
from ._result import Outcome, ReloadResult
from ._snapshot import Snapshot

C = TypeVar("C")


class State(enum.Enum):
    """Lifecycle of a Reloader."""

    UNSTARTED = "unstarted"
    RUNNING = "running"
    STOPPED = "stopped"


@attrs.frozen
class Tried:
    """The inputs of the last attempt whose outcome they decide, and that outcome's result:
    the same bytes again need no second parse, structure and plan."""

    inputs: tuple[str, ...]
    result: ReloadResult


@attrs.frozen(eq=False)
class Live(Generic[C]):
    """The live state of one Reloader.

    Attributes:
        state: its lifecycle state.
        snapshot: the live snapshot (`None` before start()).
        flat: the live config's leaves, `{path: value}`.
        inputs: digests of the source layers the live config was built from (`None`
            after a rollback: the sources hold something else).
        pending: the restart-only changes those inputs hold beyond the live config.
        restart_pending: the restart-only changes the sources hold now.
        tried: the last deterministic attempt, if its inputs differ from `inputs`.
        start_origins: where each leaf came from at start (restart-only leaves keep it).
        last: the result of the last attempt.
        last_error: the error lines of the last failed attempt, until a good one (applied,
            unchanged or rejected).
        degraded: why side effects may be half-applied (a rollback failed, an applier
            hung), until a reload or rollback succeeds.
        audit_error: why the last audit record could not be written, until one is.
        rollback_to: the version a rollback made live again, until the sources bring
            something new.
        held: the source inputs a rollback holds against: the same bytes again keep it.
    """

    state: State = State.UNSTARTED
    snapshot: Snapshot[C] | None = None
    flat: Flat = attrs.field(factory=dict, repr=False)
    inputs: tuple[str, ...] | None = None
    pending: tuple[Change, ...] = ()
    restart_pending: tuple[Change, ...] = ()
    tried: Tried | None = None
    start_origins: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    last: ReloadResult | None = None
    last_error: str | None = None
    degraded: str | None = None
    audit_error: str | None = None
    rollback_to: int | None = None
    held: tuple[str, ...] | None = None

    @property
    def version(self) -> int:
        return self.snapshot.version if self.snapshot is not None else 0

    @property
    def healthy(self) -> bool:
        return self.degraded is None and self.audit_error is None

    def evolve(self, **changes: Any) -> Live[C]:
        new: Live[C] = _evolve(self, **changes)
        return new

    def status(self, name: str, *, dead: str | None = None) -> dict[str, Any]:
        """Version, health (and why not), last outcome and error, restart-pending paths,
        and the version a rollback went back to. `dead` says why a trigger stopped."""
        snap, last = self.snapshot, self.last
        reasons = [r for r in (self.degraded, self.audit_error, dead) if r]
        return {
            "name": name,
            "state": self.state.value,
            "healthy": self.healthy and not dead,
            "unhealthy_reasons": reasons,
            "version": snap.version if snap else None,
            "digest": snap.digest if snap else None,
            "loaded_at": snap.loaded_at.isoformat() if snap else None,
            "last_outcome": last.outcome.value if last else None,
            "last_trigger": last.trigger if last else None,
            "last_error": self.last_error,
            "restart_pending": [c.path for c in self.restart_pending],
            "rollback_to": self.rollback_to,
        }


def _evolver(cls: type[Any]) -> Callable[..., Any]:
    """`attrs.evolve` for a frozen class with no validators, converters or post-init,
    specialised to its fields: `evolve(live, version=...)` copies the others one by one.

    attrs.evolve() rebuilds through `__init__` (fields(), then one frozen setattr per
    field) at ~10 us, and a reload evolves its Live about four times; this takes ~2 us.
    """
    names = [f.name for f in attrs.fields(cls)]
    assert all(f.validator is None and f.converter is None for f in attrs.fields(cls))
    params = ", ".join(f"{n}=_KEEP" for n in names)
    body = "".join(f"    _set(new, {n!r}, self.{n} if {n} is _KEEP else {n})\n" for n in names)
    source = f"def evolve(self, *, {params}):\n    new = _new(_cls)\n{body}    return new\n"
    scope: dict[str, Any] = {"_KEEP": object(), "_set": object.__setattr__, "_new": object.__new__, "_cls": cls}
    exec(compile(source, f"<selreload evolve {cls.__name__}>", "exec"), scope)
    return scope["evolve"]  # type: ignore[no-any-return]


_evolve = _evolver(Live)


@attrs.frozen
class Attempt:
    """One reload attempt in flight: what asked for it, who, and when it began."""

    trigger: str
    actor: str | None = None
    span: Any = None  # its `selreload.reload` span, when tracing is on
    rollback_to: int | None = None  # a rollback: the version it makes live again
    held: tuple[str, ...] | None = None  # a rollback: the source inputs it holds against
    t0: float = attrs.field(factory=time.perf_counter)

    def result(self, outcome: Outcome, live: Live[Any], *, previous: int | None = None, **parts: Any) -> ReloadResult:
        """The attempt's result, at the version `live` holds."""
        version = live.version
        return ReloadResult(
            outcome,
            version,
            duration_s=time.perf_counter() - self.t0,
            trigger=self.trigger,
            actor=self.actor,
            previous_version=version if previous is None else previous,
            **parts,
        )

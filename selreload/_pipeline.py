"""The stages of a reload attempt, run in order for one Reloader.

    load -> structure -> plan -> transaction -> audit (write-ahead) -> commit -> record

Each stage lives in its own module; this one runs them in order and builds the `Live`
state each attempt leaves behind. The Reloader holds the write lock around every call.
"""

from __future__ import annotations

import datetime
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Generic, TypeVar

from . import _boundary, _layers, _mask, _transaction
from ._change import Change
from ._diff import Flat
from ._errors import ApplyError, AuditWriteError, ConfigError, Issue, StateError
from ._live import Attempt, Live, Tried
from ._metrics import Metrics
from ._plan import Planner
from ._record import Fanout
from ._result import Outcome, ReloadResult
from ._routes import Batch, Route, Routes
from ._schema import Schema
from ._snapshot import Origins, Snapshot
from ._structure import Structurer
from ._tracing import Tracing
from ._transaction import Caller
from ._typing import Layer, Source

C = TypeVar("C")

_log = logging.getLogger("selreload.reload")


def live_snapshot(live: Live[C]) -> Snapshot[C]:
    if live.snapshot is None:
        raise StateError("no config is live yet: call start() first")
    return live.snapshot


_KEEP: Final = object()
"""`end()` without an `audit_error`: the state keeps the one it has."""


def _why(failure: AuditWriteError | None) -> str | None:
    if failure is None:
        return None
    cause = failure.strerror or type(failure.__cause__ or failure).__name__
    return f"the audit record could not be written ({cause})"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Pipeline(Generic[C]):
    """Runs the stages of one reload attempt and keeps the `Live` state they leave.

    `commit(snapshot)` is called at the commit point: it makes the snapshot what readers
    see (the Reloader's `current`), with one reference assignment.
    """

    __slots__ = (
        "audit",
        "call",
        "commit",
        "history",
        "instance",
        "live",
        "metrics",
        "name",
        "planner",
        "record",
        "refuse_unaudited",
        "routes",
        "schema",
        "sources",
        "structurer",
        "tracing",
    )

    def __init__(
        self,
        *,
        name: str,
        schema: Schema,
        sources: Sequence[Source],
        planner: Planner,
        routes: Routes,
        metrics: Metrics,
        tracing: Tracing,
        record: Fanout,
        audit: Any,
        refuse_unaudited: bool,
        call: Caller | None,
        history: int,
        commit: Callable[[Snapshot[C]], None],
        instance: Callable[[], str] = lambda: "",
    ) -> None:
        self.name = name
        self.instance = instance
        self.schema = schema
        self.sources = tuple(sources)
        self.structurer = Structurer(schema)
        self.planner = planner
        self.routes = routes
        self.metrics = metrics
        self.tracing = tracing
        self.record = record
        self.audit = audit
        self.refuse_unaudited = refuse_unaudited
        self.call = call
        self.history: deque[Snapshot[C]] = deque(maxlen=max(1, history))
        self.commit = commit
        self.live: Live[C] = Live()

    def start(self, attempt: Attempt) -> ReloadResult:
        layers = self.load()
        config = self.structure(layers)
        flat = self.planner.flatten(config)
        previous = self.live
        # Origins keep the layers' text and the leaf paths, never the trees or the config:
        # `live.start_origins` keeps these for good (restart-only leaves keep them).
        again, paths = _layers.retained(layers), tuple(flat)
        origins = Origins(lambda: _layers.origins(paths, again()))
        snapshot = self.snapshot(config, previous.version + 1, origins)
        batches = self.routes.batches(self.planner.initial(flat))
        self.initial(batches, snapshot, flat)
        live = Live(
            state=previous.state,
            snapshot=snapshot,
            flat=flat,
            inputs=tuple(layer.digest for layer in layers),
            start_origins=snapshot.origins,
        )
        result = attempt.result(Outcome.APPLIED, live, previous=previous.version, instance=self.instance())
        failure = self.audited(result, snapshot)
        if failure is not None and self.refuse_unaudited:
            guard = _mask.guard(self.schema, flat)
            _transaction.undo(batches, snapshot, span=self.tracing.step, guard=guard, call=self.call)
            raise failure
        return self.end(attempt, live, result, audited=True, audit_error=_why(failure))

    def apply_initial(self, route: Route, live: Live[C]) -> None:
        snapshot = live_snapshot(live)
        # Flattened again, not `live.flat`: the initial values come in path order.
        flat = self.planner.flatten(snapshot.config)
        initial = tuple(c for c in self.planner.initial(flat) if route.covers(c.path))
        if initial:
            self.initial([(route, initial)], snapshot, live.flat)

    def initial(self, batches: Sequence[Batch], snapshot: Snapshot[C], flat: Flat) -> None:
        # The initial values, as one transaction: all appliers take them, or none keeps them.
        tx = _transaction.run(
            batches,
            snapshot,
            snapshot,
            span=self.tracing.step,
            guard=_mask.guard(self.schema, flat),
            call=self.call,
        )
        if tx.outcome is not Outcome.APPLIED:
            for failed in tx.failed:
                self.metrics.applier_failed(failed)
            if tx.raised is not None:
                raise tx.raised
            raise ApplyError("\n".join(str(e) for e in tx.errors))

    def attempt(self, attempt: Attempt, live: Live[C]) -> ReloadResult:
        try:
            layers = self.load()
        except ConfigError as exc:
            return self.end(attempt, live.evolve(tried=None), Outcome.INVALID, errors=exc.issues)
        inputs = tuple(layer.digest for layer in layers)
        if inputs == live.inputs:
            # The sources hold again what is live: whatever was pending for them is back.
            live = live.evolve(restart_pending=live.pending)
            return self.end(attempt, live, Outcome.UNCHANGED, rejected=live.pending)
        if inputs == live.held:
            # A rollback holds while the sources hold what they held when it was made.
            return self.end(attempt, live, Outcome.UNCHANGED, rejected=live.restart_pending)
        tried = live.tried
        if tried is not None and inputs == tried.inputs:
            if tried.result.outcome is Outcome.INVALID:
                # INVALID is sticky: the same bad bytes are the same errors, every time.
                return self.end(attempt, live, Outcome.INVALID, errors=tried.result.errors)
            return self.end(attempt, live, Outcome.UNCHANGED, rejected=live.restart_pending)
        try:
            candidate = self.structure(layers)
        except ConfigError as exc:
            return self.end(attempt, live, Outcome.INVALID, inputs=inputs, errors=exc.issues)
        again = _layers.retained(layers)
        return self.transition(attempt, live, candidate, lambda flat: _layers.origins(flat, again()), inputs)

    def transition(
        self,
        attempt: Attempt,
        live: Live[C],
        candidate: C,
        locate: Callable[[Flat], Mapping[str, str]],
        inputs: tuple[str, ...] | None,
        *,
        pending: tuple[Change, ...] | None = None,
    ) -> ReloadResult:
        current = live_snapshot(live)
        plan = self.planner(current.config, live.flat, candidate, self.routes)
        if plan.errors:
            return self.end(attempt, live, Outcome.INVALID, inputs=inputs, errors=plan.errors)
        rejected = plan.rejected
        # Each new state is made in one copy (`Live.evolve`, ~2.5 us each): the
        # restart-pending changes go into whichever state this attempt ends with.
        restart_pending = rejected if pending is None else pending
        if plan.outcome is not Outcome.APPLIED:
            if plan.outcome is Outcome.UNCHANGED:
                live = live.evolve(restart_pending=restart_pending, inputs=inputs, pending=())
            else:
                live = live.evolve(restart_pending=restart_pending)
            return self.end(attempt, live, plan.outcome, inputs=inputs, rejected=rejected)
        eff_flat = plan.effective_flat
        start_origins, kept = live.start_origins, {c.path for c in rejected}
        flatten, effective = self.planner.flatten, plan.effective

        def located() -> Mapping[str, str]:
            # A rejected leaf keeps its live value, and restart-only values are the ones
            # start() loaded: so is their origin, not the source line holding the new one.
            # Flattened here, when asked: origins list the leaves in path order, and a
            # snapshot in history must not keep its flat map alive for an `explain`.
            out = dict(locate(flatten(effective)))
            for path in kept & out.keys():
                out[path] = start_origins.get(path, "default")
            return out

        snapshot = self.snapshot(plan.effective, live.version + 1, Origins(located))
        tx = _transaction.run(
            plan.batches,
            snapshot,
            current,
            span=self.tracing.step,
            guard=_mask.guard(self.schema, live.flat, eff_flat),
            call=self.call,
        )
        rollback_to = attempt.rollback_to
        if tx.outcome is Outcome.APPLIED:
            new = live.evolve(
                restart_pending=restart_pending,
                snapshot=snapshot,
                flat=eff_flat,
                inputs=inputs,
                pending=rejected,
                tried=None,
                degraded=None,
                rollback_to=rollback_to,
                held=attempt.held,
            )
            result = attempt.result(
                Outcome.APPLIED,
                new,
                instance=self.instance(),
                applied=plan.applied,
                rejected=rejected,
                previous=live.version,
                rollback_to=rollback_to,
            )
            # The audit record is written before the commit: with "refuse", a change whose
            # record cannot be written is undone and never goes live.
            failure = self.audited(result, snapshot)
            if failure is None or not self.refuse_unaudited:
                return self.end(attempt, new, result, audited=True, audit_error=_why(failure))
            guard = _mask.guard(self.schema, live.flat, eff_flat)
            undone = _transaction.undo(plan.batches, current, span=self.tracing.step, guard=guard, call=self.call)
            issue = Issue("", f"{_why(failure)}: the change was undone, v{live.version} stays live", "audit")
            tx = _transaction.TransactionResult(undone.outcome, (issue, *undone.errors), undone.failed, undone.raised)
            live = live.evolve(audit_error=_why(failure))
        live = live.evolve(restart_pending=restart_pending)
        if tx.outcome is Outcome.DEGRADED:
            live = live.evolve(degraded=f"a rollback failed in the reload after v{live.version}: restart this service")
        # Not remembered as tried: the appliers may succeed next time.
        result = self.end(
            attempt,
            live.evolve(tried=None),
            tx.outcome,
            errors=tx.errors,
            rejected=rejected,
            attempted=plan.applied,
            failed=tx.failed,
            rollback_to=rollback_to,
        )
        if tx.raised is not None:
            raise tx.raised  # recorded and undone: now let the process (or task) stop
        return result

    def end(
        self,
        attempt: Attempt,
        live: Live[C],
        outcome: Outcome | ReloadResult,
        *,
        inputs: tuple[str, ...] | None = None,
        audited: bool = False,
        audit_error: object = _KEEP,
        **parts: Any,
    ) -> ReloadResult:
        """End an attempt with `outcome` (or its finished result): audit it (unless it
        was, as a commit is before it happens: `audit_error` then says how that went),
        swap in the state after it (the commit, when it brings a new snapshot), then
        record it."""
        result = (
            outcome
            if isinstance(outcome, ReloadResult)
            else attempt.result(outcome, live, instance=self.instance(), **parts)
        )
        if not audited and result.outcome is not Outcome.UNCHANGED and live.snapshot is not None:
            audit_error = _why(self.audited(result, live.snapshot))
        if result.errors:
            last_error: str | None = "\n".join(str(e) for e in result.errors)
        elif result.outcome.ok:
            # A good attempt (a restored file: UNCHANGED) ends the failure: /status must
            # not keep reporting an error the sources no longer have.
            last_error = None
        else:
            last_error = live.last_error
        tried = Tried(inputs, result) if inputs is not None and result.outcome.deterministic else live.tried
        if audit_error is _KEEP:
            live = live.evolve(last=result, last_error=last_error, tried=tried)
        else:
            live = live.evolve(last=result, last_error=last_error, tried=tried, audit_error=audit_error)
        snapshot = live.snapshot
        if snapshot is not None and snapshot is not self.live.snapshot:
            self.history.append(snapshot)
            self.commit(snapshot)  # the commit point: one reference assignment for readers
        self.live = live
        self.tracing.finish(attempt.span, result)
        self.record(result, live)
        return result

    def audited(self, result: ReloadResult, snapshot: Snapshot[C]) -> AuditWriteError | None:
        """Write the audit record of `result`; the failure, if it could not be written."""
        if self.audit is None:
            return None
        try:
            self.audit.record(result, config=self.name, digest=snapshot.digest)
        except AuditWriteError as exc:
            self.metrics.audit_failed()
            _log.error("config %r: %s", self.name, _why(exc))
            return exc
        return None

    def load(self) -> list[Layer]:
        return _boundary.load(self.sources)

    def structure(self, layers: Sequence[Layer]) -> C:
        return _boundary.structure(self.structurer, layers)  # type: ignore[no-any-return]

    def snapshot(self, config: C, version: int, located: Origins) -> Snapshot[C]:
        # The digest is composed from subtree digests: only what changed is hashed again.
        return Snapshot(config, version, self.planner.digest(config), _now(), located)

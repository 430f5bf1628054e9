"""The Reloader: the one place that knows every stage of the pipeline.

    trigger -> sources -> merge -> structure + validate -> plan
            -> transaction (appliers, rollback) -> commit (one assignment) -> record

Each stage lives in its own module (`_layers`, `_structure`, `_plan`, `_transaction`,
`_record`, `_trigger`); this one only runs them in order under the write lock and swaps
the resulting `Live` state in. Readers never take the lock: `current` is a plain
attribute that a commit replaces with a single reference assignment.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar, overload

from prometheus_client import REGISTRY, CollectorRegistry

from . import _layers, _mask, _paths, _transaction
from ._change import Change
from ._diff import Flat, digest
from ._errors import ApplyError, AuditWriteError, ConfigError, Issue, StateError, UnknownVersionError
from ._live import Attempt, Live, State, Tried
from ._metrics import Metrics
from ._plan import Planner
from ._policy import PolicyInput, load_policies
from ._record import Fanout, LogRecorder, MetricsRecorder, Recorder, ReporterRecorder, SubscriberRecorder
from ._result import Outcome, Plan, ReloadResult
from ._routes import Batch, Route, Routes, applier_name
from ._schema import Schema
from ._snapshot import Origins, Snapshot
from ._structure import Structurer
from ._tracing import Tracing
from ._transaction import Deadline
from ._trigger import Coalescer, Triggers
from ._typing import Layer, Reporter, Source

__all__ = ["Reloader", "State"]

C = TypeVar("C")
A = TypeVar("A")
F = TypeVar("F", bound=Callable[..., Any])

_log = logging.getLogger("selreload.reload")


class _NotStarted:
    """What `current` holds before start(): any use says what to do.

    A sentinel instead of `Reloader.__getattr__`: a class with `__getattr__` loses
    CPython's specialised attribute loads, which made every `current` read 3.5x slower.
    """

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise StateError(f"reloader {self._name!r} has no config yet: call start() first")

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<reloader {self._name!r}: no config yet, call start()>"


def _live_snapshot(live: Live[C]) -> Snapshot[C]:
    if live.snapshot is None:
        raise StateError("no config is live yet: call start() first")
    return live.snapshot


def _why(failure: AuditWriteError | None) -> str | None:
    if failure is None:
        return None
    cause = failure.strerror or type(failure.__cause__ or failure).__name__
    return f"the audit record could not be written ({cause})"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Reloader(Generic[C]):
    """Loads a config class from layered sources and keeps it live, safely.

    Args:
        schema: a `@sr.config` class.
        sources: layers, lowest precedence first (`[YamlFile(...), Env(prefix="APP_")]`).
        policies: policy files (paths or `PolicySet`s) overriding declared policies.
        audit: an `AuditLog` that gets one record per attempt that is not UNCHANGED.
        registry: the Prometheus registry (default: the global one).
        tracer_provider: OpenTelemetry provider (default: the global one, once set).
        history: how many snapshots `history` keeps for `rollback()`.
        name: the `config` label of metrics and the name in audit records.
        strict: a restart-only change rejects the whole reload, hot changes included.
        applier_timeout: seconds an applier (or rollback) call may take; past it the
            reload is undone and DEGRADED, and the lock is released. Appliers then run on
            a worker thread with the caller's context. `None`: inline, no deadline.
        on_audit_failure: when the audit record of a change cannot be written (disk full,
            I/O error): `"refuse"` undoes the change, so nothing goes live unaudited (the
            audit is a write-ahead gate); `"degrade"` commits it. Either way `status()` is
            unhealthy and `selreload_audit_failures_total` counts it until a record is
            written again.
        recorders: more outputs of every attempt (see `selreload.typing.Recorder`), called
            after the built-in ones and before the subscribers.

    Raises:
        PolicyError: a policy file glob matches no field or loosens a secret.
    """

    # Slots: `current` is read on every request, and a slot load is the fastest attribute
    # read CPython has (a plain attribute still: no property, no Python code runs).
    __slots__ = (
        "__weakref__",
        "_call",
        "_coalescer",
        "_history",
        "_inside_reload",
        "_live",
        "_metrics",
        "_pin",
        "_planner",
        "_record",
        "_refuse_unaudited",
        "_routes",
        "_structurer",
        "_subscribers",
        "_tracing",
        "_triggers",
        "_write",
        "audit",
        "current",
        "name",
        "registry",
        "schema",
        "snapshot",
        "sources",
    )

    current: C
    """The live config: a plain attribute read, no lock, no copy."""

    def __init__(
        self,
        schema: type[C],
        sources: Sequence[Source] = (),
        *,
        policies: PolicyInput | Iterable[PolicyInput] | None = None,
        audit: Any = None,
        registry: CollectorRegistry | None = None,
        tracer_provider: Any = None,
        history: int = 10,
        name: str = "default",
        strict: bool = False,
        applier_timeout: float | None = 5.0,
        on_audit_failure: Literal["refuse", "degrade"] = "refuse",
        recorders: Iterable[Recorder] = (),
    ) -> None:
        self.name = name
        self.schema = Schema(schema, policies=load_policies(policies))
        self.sources: tuple[Source, ...] = tuple(sources)
        self.audit = audit
        if on_audit_failure not in ("refuse", "degrade"):
            raise ValueError(f"on_audit_failure must be 'refuse' or 'degrade', got {on_audit_failure!r}")
        self._refuse_unaudited = on_audit_failure == "refuse"
        self._structurer = Structurer(self.schema)
        self._planner = Planner(self.schema, strict=strict)
        self._routes = Routes()
        # Kept for the admin app's GET /metrics.
        self.registry = registry if registry is not None else REGISTRY
        self._metrics = Metrics(name, registry)
        self._tracing = Tracing(tracer_provider)
        self._history: deque[Snapshot[C]] = deque(maxlen=max(1, history))
        self._subscribers: list[Callable[[ReloadResult], None]] = []
        # Reporters found once: an isinstance() against a runtime Protocol costs ~10 us.
        reporters = [ReporterRecorder(s) for s in self.sources if isinstance(s, Reporter)]
        self._record = Fanout(
            [
                MetricsRecorder(self._metrics),
                LogRecorder(name),
                *reporters,
                *recorders,
                SubscriberRecorder(self._subscribers, name),
            ],
            name=name,
        )
        self._pin: contextvars.ContextVar[Snapshot[C] | None] = contextvars.ContextVar(
            f"selreload.pin.{name}.{id(self):x}", default=None
        )
        # One writer at a time. Re-entrant so that a subscriber (which runs on the
        # reloading thread) calling on() does not deadlock; plan() and status() take no lock.
        self._write = threading.RLock()
        # Set while this Reloader runs a reload; copied into applier calls with the context.
        self._inside_reload: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"selreload.inside.{name}.{id(self):x}", default=False
        )
        self._call = Deadline(applier_timeout, name=name) if applier_timeout else None
        self._coalescer = Coalescer(self._drain, inside=self._inside, name=name)
        self._triggers = Triggers(self.sources, self._coalescer, name=name)
        self._live: Live[C] = Live()
        self.snapshot: Snapshot[C] | None = None
        self.current = _NotStarted(name)  # type: ignore[assignment]

    def __repr__(self) -> str:
        live = self._live
        version = live.snapshot.version if live.snapshot else None
        return f"<Reloader {self.name!r} {self.schema.cls.__name__} {live.state.value} v{version}>"

    @property
    def strict(self) -> bool:
        """A restart-only change rejects the whole reload, hot changes included."""
        return self._planner.strict

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._live.state

    def start(self) -> Snapshot[C]:
        """Load and validate the config, apply it to every applier, and start watching.

        Watchers start first, so a change that lands while the initial config loads
        becomes a reload right after start instead of being missed.

        Raises:
            ConfigError: the initial config is invalid (fail fast).
            ApplyError: an applier failed on the initial values (the others are undone).
            StateError: already running.
        """
        if self._live.state is State.RUNNING:
            raise StateError(f"reloader {self.name!r} is already running")
        self._triggers.start()
        try:
            with self._write, self._tracing.reload("start") as span:
                self._start_locked(Attempt("start", span=span))
                self._live = self._live.evolve(state=State.RUNNING)
        except BaseException:
            # Outside the lock: a watcher thread may be waiting for it to reload.
            self._triggers.stop()
            raise
        return _live_snapshot(self._live)

    def _start_locked(self, attempt: Attempt) -> ReloadResult:
        layers = self._load()
        config = self._structure(layers)
        flat = self._planner.flatten(config)
        previous = self._live
        snapshot = self._snapshot(config, flat, previous.version + 1, Origins(lambda: _layers.origins(flat, layers)))
        batches = self._routes.batches(self._planner.initial(flat))
        self._initial(batches, snapshot, flat)
        live = Live(
            state=previous.state,
            snapshot=snapshot,
            flat=flat,
            inputs=tuple(layer.digest for layer in layers),
            start_origins=snapshot.origins,
        )
        result = attempt.result(Outcome.APPLIED, live, previous=previous.version)
        failure = self._audited(result, snapshot)
        if failure is not None and self._refuse_unaudited:
            _transaction.undo(batches, snapshot, span=self._tracing.step, call=self._call)
            raise failure
        return self._end(attempt, live.evolve(audit_error=_why(failure)), result, audited=True)

    def stop(self) -> None:
        """Stop every watcher (joining their threads) and restore the signal handlers
        `install_signal_handler()` replaced. `reload()` still works after."""
        self._triggers.stop()
        if self._call is not None:
            self._call.close()
        with self._write:
            if self._live.state is State.RUNNING:
                self._live = self._live.evolve(state=State.STOPPED)

    def install_signal_handler(self, signum: int = signal.SIGHUP) -> None:
        """Reload with trigger `"signal"` whenever `signum` arrives, until `stop()`.

        The handler only wakes a worker thread that runs the reload: a reload inside the
        handler would run in the middle of whatever the main thread was doing.

        Raises:
            RuntimeError: not called from the main thread (only it can set handlers).
        """
        self._triggers.install_signal(signum, self._on_signal)

    def _on_signal(self, trigger: str) -> None:
        if self._live.snapshot is None:
            _log.warning("config %r: %s ignored: start() has not loaded a config yet", self.name, trigger)
            return
        self._triggers.notify(trigger)

    def __enter__(self) -> Reloader[C]:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- appliers and subscribers --------------------------------------------------------

    @overload
    def on(self, path: str, *, name: str | None = None) -> Callable[[F], F]: ...
    @overload
    def on(self, path: str, applier: A, *, name: str | None = None) -> A: ...

    def on(self, path: str, applier: Any = None, *, name: str | None = None) -> Any:
        """Register an applier for every change at or under `path` (a dotted path or glob).

        Use as a call (`reloader.on("logging.level", LogLevel())`) or as a decorator on a
        function `(changes, snapshot) -> None`. Appliers run in registration order; one
        registered while running gets the live values at once, as a transaction of its
        own (span and metrics included).

        Raises:
            ValueError: `path` matches no field of the schema.
            ApplyError: registered while running, and it failed on the live values (it
                is not registered then).
        """
        if not self.schema.paths_matching(path):
            raise ValueError(f"no config field at {path!r}{_paths.hint(path, self.schema.leaves)}")

        def register(target: Any) -> Any:
            wrapped = target
            if not (hasattr(target, "apply") and hasattr(target, "rollback")):
                if not callable(target):
                    raise TypeError(f"an applier has apply()/rollback() or is a function, got {target!r}")
                wrapped = _transaction.FunctionApplier(target)
            label = name or applier_name(wrapped)
            with self._write:
                live = self._live
                if live.snapshot is not None and live.state is State.RUNNING:
                    self._apply_initial(Route(path, wrapped, label), live)
                self._routes.add(path, wrapped, label)
            return target

        return register if applier is None else register(applier)

    def _apply_initial(self, route: Route, live: Live[C]) -> None:
        snapshot = _live_snapshot(live)
        initial = tuple(c for c in self._planner.initial(live.flat) if route.covers(c.path))
        if initial:
            self._initial([(route, initial)], snapshot, live.flat)

    def _initial(self, batches: Sequence[Batch], snapshot: Snapshot[C], flat: Flat) -> None:
        # The initial values, as one transaction: all appliers take them, or none keeps them.
        tx = _transaction.run(
            batches,
            snapshot,
            snapshot,
            span=self._tracing.step,
            scrub=_mask.scrubber(self.schema, flat),
            call=self._call,
        )
        if tx.outcome is not Outcome.APPLIED:
            for failed in tx.failed:
                self._metrics.applier_failed(failed)
            if tx.raised is not None:
                raise tx.raised
            raise ApplyError("\n".join(str(e) for e in tx.errors))

    def subscribe(self, callback: Callable[[ReloadResult], None]) -> Callable[[ReloadResult], None]:
        """Call `callback(result)` after every committed reload (usable as a decorator)."""
        self._subscribers.append(callback)
        return callback

    # --- reloading ----------------------------------------------------------------------

    def reload(self, trigger: str = "manual", actor: str | None = None) -> ReloadResult:
        """Reload from the sources now and return what happened (never raises for bad
        config: that is an INVALID result).

        Raises:
            StateError: not started, or called from inside a reload (an applier or
                subscriber); use `request_reload()` there, which runs after it.
        """
        with self._writing(), self._write:
            live = self._require_live()
            with self._tracing.reload(trigger) as span:
                result = self._attempt(Attempt(trigger, actor, span=span), live)
        self._coalescer.run_deferred()
        return result

    def request_reload(self, trigger: str = "manual") -> None:
        """Ask for a reload without waiting when one is running: triggers that arrive
        during a reload coalesce into one more reload after it. Watchers call this."""
        self._coalescer.request(trigger)

    def _drain(self, trigger: str) -> None:
        self.reload(trigger=trigger)

    def _inside(self) -> bool:
        return self._inside_reload.get()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        # A reload from inside a reload (an applier or subscriber) would nest a second
        # transaction in the first, or wait forever for the lock its caller holds: refuse it.
        if self._inside():
            raise StateError(
                f"reloader {self.name!r}: reload() or rollback() called from inside a reload "
                "(an applier or subscriber?); call request_reload() to reload after it"
            )
        token = self._inside_reload.set(True)
        try:
            yield
        finally:
            self._inside_reload.reset(token)

    def plan(self) -> Plan:
        """What a reload would do now, applying nothing (before start(): what start()
        would apply, every leaf from `UNSET`).

        Takes no lock: it plans against the live state of the moment, and never waits
        for a reload that is running (or hanging in an applier).
        """
        live = self._live
        try:
            candidate = self._structure(self._load())
        except ConfigError as exc:
            return Plan(errors=exc.issues, strict=self.strict)
        if live.snapshot is None:
            return self._planner.initial_plan(candidate, self._routes)
        return self._planner(live.snapshot.config, live.flat, candidate, self._routes)

    def rollback(self, version: int, *, actor: str | None = None) -> ReloadResult:
        """Make a snapshot from `history` live again, through the same plan, policies and
        transaction as any reload (restart-only differences are rejected).

        Raises:
            UnknownVersionError: `version` is not in `history` (a `KeyError`).
        """
        with self._writing(), self._write:
            live = self._require_live()
            target = next((s for s in self._history if s.version == version), None)
            if target is None:
                kept = ", ".join(str(s.version) for s in self._history)
                raise UnknownVersionError(f"version {version} is not in history (kept: {kept})")
            with self._tracing.reload("rollback") as span:
                # It holds until the sources bring new bytes: the newest inputs seen.
                held = live.tried.inputs if live.tried is not None else (live.held or live.inputs)
                attempt = Attempt("rollback", actor, span=span, rollback_to=version, held=held)
                # What the sources hold is unchanged by a rollback, and so is what of it
                # waits for a restart (restart-only leaves are the same in every version).
                result = self._transition(
                    attempt, live, target.config, lambda flat: target.origins, None, pending=live.restart_pending
                )
        self._coalescer.run_deferred()
        return result

    # --- the stages, in order -----------------------------------------------------------

    def _attempt(self, attempt: Attempt, live: Live[C]) -> ReloadResult:
        try:
            layers = self._load()
        except ConfigError as exc:
            return self._end(attempt, live.evolve(tried=None), Outcome.INVALID, errors=exc.issues)
        inputs = tuple(layer.digest for layer in layers)
        if inputs == live.inputs:
            # The sources hold again what is live: whatever was pending for them is back.
            live = live.evolve(restart_pending=live.pending)
            return self._end(attempt, live, Outcome.UNCHANGED, rejected=live.pending)
        if inputs == live.held:
            # A rollback holds while the sources hold what they held when it was made.
            return self._end(attempt, live, Outcome.UNCHANGED, rejected=live.restart_pending)
        if live.tried is not None and inputs == live.tried.inputs:
            return self._end(attempt, live, Outcome.UNCHANGED, rejected=live.restart_pending)
        try:
            candidate = self._structure(layers)
        except ConfigError as exc:
            return self._end(attempt, live, Outcome.INVALID, inputs=inputs, errors=exc.issues)
        return self._transition(attempt, live, candidate, lambda flat: _layers.origins(flat, layers), inputs)

    def _transition(
        self,
        attempt: Attempt,
        live: Live[C],
        candidate: C,
        locate: Callable[[Flat], Mapping[str, str]],
        inputs: tuple[str, ...] | None,
        *,
        pending: tuple[Change, ...] | None = None,
    ) -> ReloadResult:
        current = _live_snapshot(live)
        plan = self._planner(current.config, live.flat, candidate, self._routes)
        if plan.errors:
            return self._end(attempt, live, Outcome.INVALID, inputs=inputs, errors=plan.errors)
        rejected = plan.rejected
        live = live.evolve(restart_pending=rejected if pending is None else pending)
        if plan.outcome is not Outcome.APPLIED:
            if plan.outcome is Outcome.UNCHANGED:
                live = live.evolve(inputs=inputs, pending=())
            return self._end(attempt, live, plan.outcome, inputs=inputs, rejected=rejected)
        eff_flat = plan.effective_flat
        start_origins, kept = live.start_origins, {c.path for c in rejected}

        def located() -> Mapping[str, str]:
            # A rejected leaf keeps its live value, and restart-only values are the ones
            # start() loaded: so is their origin, not the source line holding the new one.
            out = dict(locate(eff_flat))
            for path in kept & out.keys():
                out[path] = start_origins.get(path, "default")
            return out

        snapshot = self._snapshot(plan.effective, eff_flat, live.version + 1, Origins(located))
        tx = _transaction.run(
            plan.batches,
            snapshot,
            current,
            span=self._tracing.step,
            scrub=_mask.scrubber(self.schema, live.flat, eff_flat),
            call=self._call,
        )
        rollback_to = attempt.rollback_to
        if tx.outcome is Outcome.APPLIED:
            new = live.evolve(
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
                applied=plan.applied,
                rejected=rejected,
                previous=live.version,
                rollback_to=rollback_to,
            )
            # The audit record is written before the commit: with "refuse", a change whose
            # record cannot be written is undone and never goes live.
            failure = self._audited(result, snapshot)
            if failure is None or not self._refuse_unaudited:
                return self._end(attempt, new.evolve(audit_error=_why(failure)), result, audited=True)
            undone = _transaction.undo(plan.batches, current, span=self._tracing.step, call=self._call)
            issue = Issue("", f"{_why(failure)}: the change was undone, v{live.version} stays live", "audit")
            tx = _transaction.TransactionResult(undone.outcome, (issue, *undone.errors), undone.failed, undone.raised)
            live = live.evolve(audit_error=_why(failure))
        if tx.outcome is Outcome.DEGRADED:
            live = live.evolve(degraded=f"a rollback failed in the reload after v{live.version}: restart this service")
        # Not remembered as tried: the appliers may succeed next time.
        result = self._end(
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

    def _end(
        self,
        attempt: Attempt,
        live: Live[C],
        outcome: Outcome | ReloadResult,
        *,
        inputs: tuple[str, ...] | None = None,
        audited: bool = False,
        **parts: Any,
    ) -> ReloadResult:
        """End an attempt with `outcome` (or its finished result): audit it (unless it
        was, as a commit is before it happens), swap in the state after it (the commit,
        when it brings a new snapshot), then record it."""
        result = outcome if isinstance(outcome, ReloadResult) else attempt.result(outcome, live, **parts)
        if not audited and result.outcome is not Outcome.UNCHANGED and live.snapshot is not None:
            failure = self._audited(result, live.snapshot)
            live = live.evolve(audit_error=_why(failure))
        if result.errors:
            last_error: str | None = "\n".join(str(e) for e in result.errors)
        elif result.outcome is Outcome.APPLIED:
            last_error = None
        else:
            last_error = live.last_error
        tried = Tried(inputs, result) if inputs is not None and result.outcome.deterministic else live.tried
        live = live.evolve(last=result, last_error=last_error, tried=tried)
        snapshot = live.snapshot
        if snapshot is not None and snapshot is not self.snapshot:
            # The commit point: readers see the old config or the new one, never a mix.
            self.current = snapshot.config
            self.snapshot = snapshot
            self._history.append(snapshot)
        self._live = live
        self._tracing.finish(attempt.span, result)
        self._record(result, live)
        return result

    def _audited(self, result: ReloadResult, snapshot: Snapshot[C]) -> AuditWriteError | None:
        """Write the audit record of `result`; the failure, if it could not be written."""
        if self.audit is None:
            return None
        try:
            self.audit.record(result, config=self.name, digest=snapshot.digest)
        except AuditWriteError as exc:
            self._metrics.audit_failed()
            _log.error("config %r: %s", self.name, _why(exc))
            return exc
        return None

    def _load(self) -> list[Layer]:
        return _layers.load(self.sources)

    def _structure(self, layers: Sequence[Layer]) -> C:
        return _layers.structure(self._structurer, layers)  # type: ignore[no-any-return]

    def _snapshot(self, config: C, flat: Flat, version: int, located: Origins) -> Snapshot[C]:
        return Snapshot(config, version, digest(flat), _now(), located)

    def _require_live(self) -> Live[C]:
        live = self._live
        if live.snapshot is None:
            raise StateError(f"reloader {self.name!r} has no config yet: call start() first")
        return live

    # --- reading ------------------------------------------------------------------------

    @contextlib.contextmanager
    def pin(self) -> Iterator[C]:
        """Pin the live snapshot for this block (and the tasks/threads that copy its
        context): `pinned()` returns it until the block ends, whatever reloads happen.
        Nested pins keep the outermost snapshot."""
        outer = self._pin.get()
        snapshot = outer if outer is not None else self._require_live().snapshot
        token = self._pin.set(snapshot)
        try:
            yield snapshot.config  # type: ignore[union-attr]
        finally:
            self._pin.reset(token)

    def pinned(self) -> C:
        """The config pinned in this context, or the live one outside a pin."""
        snapshot = self._pin.get()
        return snapshot.config if snapshot is not None else self.current

    @property
    def history(self) -> list[Snapshot[C]]:
        """The last `history` snapshots that went live, oldest first."""
        return list(self._history)

    @property
    def restart_pending(self) -> tuple[Change, ...]:
        """Restart-only changes the sources hold that the live config does not."""
        return self._live.restart_pending

    def status(self) -> dict[str, Any]:
        """Version, health and why not (a failed rollback, an unwritable audit log, a dead
        watcher), last outcome and error, restart-pending paths and the version a rollback
        went back to: read from one consistent state."""
        live = self._live
        return live.status(self.name, dead=self._triggers.dead() if live.state is State.RUNNING else None)

"""The Reloader: the one place that knows every stage of the pipeline.

    trigger -> sources -> merge -> structure + validate -> diff -> plan
            -> transaction (appliers, rollback) -> commit (one assignment) -> record

Reloads are serialized by one lock; readers never take it: `current` is a plain
attribute that a commit replaces with a single reference assignment.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import enum
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

from prometheus_client import REGISTRY, CollectorRegistry

from . import _layers, _transaction
from ._change import UNSET, Change, Policy
from ._diff import Flattener, apply_changes, diff, digest
from ._errors import ApplyError, ConfigError, Issue, StateError
from ._layers import origins
from ._log import log_result
from ._mask import scrub
from ._metrics import Metrics
from ._policy import PolicyInput, load_policies
from ._result import Action, Outcome, Plan, PlannedChange, ReloadResult
from ._schema import Schema
from ._signals import SignalTrigger
from ._snapshot import Origins, Snapshot
from ._structure import Structurer
from ._tracing import Tracing
from ._typing import Layer, Reporter, Source, Watcher

C = TypeVar("C")
A = TypeVar("A")
F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("selreload")

# Deterministic outcomes: the same inputs give the same outcome again, so identical bytes
# after one of these are UNCHANGED (no second audit record for a double file event).
# ROLLED_BACK and DEGRADED depend on appliers, so identical inputs are retried.
_REPEATABLE = (Outcome.APPLIED, Outcome.UNCHANGED, Outcome.REJECTED, Outcome.INVALID)


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


class State(enum.Enum):
    """Lifecycle of a Reloader."""

    UNSTARTED = "unstarted"
    RUNNING = "running"
    STOPPED = "stopped"


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

    Raises:
        PolicyError: a policy file glob matches no field or loosens a secret.
    """

    # Slots: `current` is read on every request, and a slot load is the fastest attribute
    # read CPython has (a plain attribute still: no property, no Python code runs).
    __slots__ = (
        "__weakref__",
        "_deferred",
        "_draining",
        "_flatten",
        "_healthy",
        "_history",
        "_last",
        "_last_error",
        "_last_inputs",
        "_live_flat",
        "_live_inputs",
        "_live_pending",
        "_metrics",
        "_pending",
        "_pin",
        "_registrations",
        "_reporters",
        "_restart_pending",
        "_signals",
        "_start_origins",
        "_state",
        "_structurer",
        "_subscribers",
        "_tracing",
        "_trigger_lock",
        "_watchers",
        "_write",
        "_writer",
        "audit",
        "current",
        "name",
        "registry",
        "schema",
        "snapshot",
        "sources",
        "strict",
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
    ) -> None:
        self.name = name
        self.schema = Schema(schema, policies=load_policies(policies))
        self.sources: tuple[Source, ...] = tuple(sources)
        # Found once: an isinstance() against a runtime Protocol costs ~10 us per call.
        self._reporters: tuple[Reporter, ...] = tuple(s for s in self.sources if isinstance(s, Reporter))
        self.audit = audit
        self.strict = strict
        self._structurer = Structurer(self.schema)
        self._flatten = Flattener(self.schema)
        # Kept for the admin app's GET /metrics.
        self.registry = registry if registry is not None else REGISTRY
        self._metrics = Metrics(name, registry)
        self._tracing = Tracing(tracer_provider)
        self._history: deque[Snapshot[C]] = deque(maxlen=max(1, history))
        self._registrations: list[_transaction.Registration] = []
        self._subscribers: list[Callable[[ReloadResult], None]] = []
        self._pin: contextvars.ContextVar[Snapshot[C] | None] = contextvars.ContextVar(
            f"selreload.pin.{name}.{id(self):x}", default=None
        )
        # One writer at a time. Re-entrant so that an applier or subscriber calling
        # plan() or status() on its own Reloader does not deadlock.
        self._write = threading.RLock()
        self._writer: int | None = None  # the thread inside reload()/rollback(), if any
        self._deferred = False  # request_reload() was called from inside a reload
        self._trigger_lock = threading.Lock()
        self._pending: str | None = None
        self._draining = False
        self._state = State.UNSTARTED
        self._watchers: list[Watcher] = []
        self._signals: SignalTrigger | None = None
        self._live_flat: dict[str, Any] = {}
        self._live_inputs: tuple[str, ...] | None = None
        self._last_inputs: tuple[str, ...] | None = None
        self._last: ReloadResult | None = None
        self._last_error: str | None = None
        self._healthy = True
        self._restart_pending: tuple[Change, ...] = ()
        self._live_pending: tuple[Change, ...] = ()  # what was pending for _live_inputs
        self.snapshot: Snapshot[C] | None = None
        self._start_origins: Mapping[str, str] = {}
        self.current = _NotStarted(name)  # type: ignore[assignment]

    def __repr__(self) -> str:
        version = self.snapshot.version if self.snapshot else None
        return f"<Reloader {self.name!r} {self.schema.cls.__name__} {self._state.value} v{version}>"

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    def start(self) -> Snapshot[C]:
        """Load and validate the config, apply it to every applier, and start watching.

        Watchers start first, so a change that lands while the initial config loads
        becomes a reload right after start instead of being missed.

        Raises:
            ConfigError: the initial config is invalid (fail fast).
            ApplyError: an applier failed on the initial values (the others are undone).
            StateError: already running.
        """
        if self._state is State.RUNNING:
            raise StateError(f"reloader {self.name!r} is already running")
        watchers = [w for w in (s.watch(self.request_reload) for s in self.sources) if w is not None]
        try:
            with self._write, self._tracing.reload("start") as span:
                snapshot = self._start_locked()
                self._tracing.finish(span, self._last)
                self._watchers = watchers
                self._state = State.RUNNING
        except BaseException:
            # Outside the lock: a watcher thread may be waiting for it to reload.
            for w in watchers:
                w.stop()
            raise
        return snapshot

    def _start_locked(self) -> Snapshot[C]:
        t0 = time.perf_counter()
        layers = self._load()
        config = self._structure(layers)
        flat = self._flatten(config)
        previous = self.snapshot
        version = previous.version + 1 if previous is not None else 1
        snapshot = self._make_snapshot(config, flat, version, Origins(lambda: origins(flat, layers)))
        initial = self._initial_changes(flat)
        batches = [(reg, reg.select(initial)) for reg in self._registrations]
        tx = _transaction.run(
            [b for b in batches if b[1]], snapshot, snapshot, span=self._tracing.step, scrub=self._scrubber(flat)
        )
        if tx.outcome is not Outcome.APPLIED:
            for applier in tx.failed:
                self._metrics.applier_failed(applier)
            raise ApplyError("\n".join(str(e) for e in tx.errors))
        self._commit(snapshot, flat, tuple(layer.digest for layer in layers))
        self._start_origins = snapshot.origins
        self._restart_pending = self._live_pending = ()
        self._healthy = True
        result = ReloadResult(
            Outcome.APPLIED,
            version,
            duration_s=time.perf_counter() - t0,
            trigger="start",
            previous_version=previous.version if previous else 0,
        )
        self._record(result)
        return snapshot

    def stop(self) -> None:
        """Stop every watcher (joining their threads) and restore the signal handlers
        `install_signal_handler()` replaced. `reload()` still works after."""
        watchers, self._watchers = self._watchers, []
        for w in watchers:
            w.stop()
        signals, self._signals = self._signals, None
        if signals is not None:
            signals.stop()
        if self._state is State.RUNNING:
            self._state = State.STOPPED

    def install_signal_handler(self, signum: int = signal.SIGHUP) -> None:
        """Reload with trigger `"signal"` whenever `signum` arrives, until `stop()`.

        The handler only wakes a worker thread that runs the reload: a reload inside the
        handler would run in the middle of whatever the main thread was doing.

        Raises:
            RuntimeError: not called from the main thread (only it can set handlers).
        """
        if self._signals is None:
            self._signals = SignalTrigger(self._on_signal)
        self._signals.install(signum)

    def _on_signal(self, trigger: str) -> None:
        if self.snapshot is None:
            log.warning("config %r: %s ignored: start() has not loaded a config yet", self.name, trigger)
            return
        self.request_reload(trigger)

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
        registered while running gets the live values at once.

        Raises:
            ValueError: `path` matches no field of the schema.
        """
        if not self.schema.paths_matching(path):
            hint = self.schema.suggest(path)
            tip = f"; did you mean {hint!r}?" if hint else ""
            raise ValueError(f"no config field at {path!r}{tip}")

        def register(target: Any) -> Any:
            wrapped = target
            if not (hasattr(target, "apply") and hasattr(target, "rollback")):
                if not callable(target):
                    raise TypeError(f"an applier has apply()/rollback() or is a function, got {target!r}")
                wrapped = _transaction.FunctionApplier(target)
            reg = _transaction.Registration(path, wrapped, name or _transaction.applier_name(wrapped))
            with self._write:
                if self.snapshot is not None and self._state is State.RUNNING:
                    initial = reg.select(self._initial_changes(self._live_flat))
                    if initial:
                        reg.applier.apply(initial, self.snapshot)
                self._registrations.append(reg)
            return target

        return register if applier is None else register(applier)

    def subscribe(self, callback: Callable[[ReloadResult], None]) -> Callable[[ReloadResult], None]:
        """Call `callback(result)` after every committed reload (usable as a decorator)."""
        self._subscribers.append(callback)
        return callback

    # --- reloading ----------------------------------------------------------------------

    def reload(self, trigger: str = "manual", actor: str | None = None) -> ReloadResult:
        """Reload from the sources now and return what happened (never raises for bad
        config: that is an INVALID result).

        Raises:
            StateError: called from inside a reload (an applier or subscriber); use
                `request_reload()` there, which runs after the current one.
        """
        with self._write, self._writing():
            result = self._reload_locked(trigger, actor)
        self._run_deferred()
        return result

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        # The lock is re-entrant (an applier may call plan() or status()), so a reload from
        # inside a reload would nest a second transaction in the first: refuse it.
        if self._writer == threading.get_ident():
            raise StateError(
                f"reloader {self.name!r}: reload() or rollback() called from inside a reload "
                "(an applier or subscriber?); call request_reload() to reload after it"
            )
        self._writer = threading.get_ident()
        try:
            yield
        finally:
            self._writer = None

    def request_reload(self, trigger: str = "manual") -> None:
        """Ask for a reload without waiting when one is running: triggers that arrive
        during a reload coalesce into one more reload after it. Watchers call this."""
        with self._trigger_lock:
            self._pending = self._pending or trigger
            if self._writer == threading.get_ident():
                self._deferred = True  # asked from inside a reload: run it once that ends
                return
            if self._draining:
                return
            self._draining = True
        while True:
            with self._trigger_lock:
                pending, self._pending = self._pending, None
                if pending is None:
                    self._draining = False
                    return
            try:
                self.reload(trigger=pending)
            except Exception:  # a watcher thread must survive anything
                log.exception("config %r: reload from %s failed unexpectedly", self.name, pending)

    def _run_deferred(self) -> None:
        if self._deferred and self._writer is None:
            self._deferred = False
            self.request_reload(self._pending or "manual")

    def plan(self) -> Plan:
        """What a reload would do now, applying nothing."""
        with self._write:
            try:
                layers = self._load()
                config = self._structure(layers)
            except ConfigError as exc:
                return Plan(errors=exc.issues, strict=self.strict)
            return self._plan(config)[0]

    def rollback(self, version: int, *, actor: str | None = None) -> ReloadResult:
        """Make a snapshot from `history` live again, through the same plan, policies and
        transaction as any reload (restart-only differences are rejected).

        Raises:
            KeyError: `version` is not in `history`.
        """
        with self._write, self._writing():
            target = next((s for s in self._history if s.version == version), None)
            if target is None:
                kept = ", ".join(str(s.version) for s in self._history)
                raise KeyError(f"version {version} is not in history (kept: {kept})")
            t0 = time.perf_counter()
            with self._tracing.reload("rollback") as span:
                result = self._transition(target.config, lambda flat: target.origins, None, "rollback", actor, t0)
                self._tracing.finish(span, result)
            if result.outcome is Outcome.APPLIED:
                # The sources still hold what they held: the next reload from them is news.
                self._live_inputs = self._last_inputs = None
            self._record(result)
        self._run_deferred()
        return result

    def _reload_locked(self, trigger: str, actor: str | None) -> ReloadResult:
        t0 = time.perf_counter()
        if self.snapshot is None:
            raise StateError(f"reloader {self.name!r} has no config yet: call start() first")
        with self._tracing.reload(trigger) as span:
            result = self._attempt(trigger, actor, t0)
            self._tracing.finish(span, result)
        self._record(result)
        return result

    def _attempt(self, trigger: str, actor: str | None, t0: float) -> ReloadResult:
        try:
            layers = self._load()
        except ConfigError as exc:
            self._last_inputs = None
            return self._result(Outcome.INVALID, t0, trigger, actor, errors=exc.issues)
        inputs = tuple(layer.digest for layer in layers)
        if inputs == self._live_inputs:
            # The sources hold again what is live: whatever was pending for them is back.
            self._restart_pending = self._live_pending
            return self._result(Outcome.UNCHANGED, t0, trigger, actor, rejected=self._restart_pending)
        if inputs == self._last_inputs and self._last is not None and self._last.outcome in _REPEATABLE:
            return self._result(Outcome.UNCHANGED, t0, trigger, actor, rejected=self._restart_pending)
        self._last_inputs = inputs
        try:
            config = self._structure(layers)
        except ConfigError as exc:
            return self._result(Outcome.INVALID, t0, trigger, actor, errors=exc.issues)
        return self._transition(config, lambda flat: origins(flat, layers), inputs, trigger, actor, t0)

    def _transition(
        self,
        candidate: C,
        locate: Callable[[dict[str, Any]], Mapping[str, str]],
        inputs: tuple[str, ...] | None,
        trigger: str,
        actor: str | None,
        t0: float,
    ) -> ReloadResult:
        plan, effective, eff_flat = self._plan(candidate)
        if plan.errors:
            return self._result(Outcome.INVALID, t0, trigger, actor, errors=plan.errors)
        self._restart_pending = plan.rejected
        if plan.outcome is not Outcome.APPLIED:
            if plan.outcome is Outcome.UNCHANGED:
                self._live_inputs, self._live_pending = inputs, ()
            return self._result(plan.outcome, t0, trigger, actor, rejected=plan.rejected)
        live = self._live()
        start_origins, kept = self._start_origins, {c.path for c in plan.rejected}

        def located() -> Mapping[str, str]:
            # A rejected leaf keeps its live value, and restart-only values are the ones
            # start() loaded: so is their origin, not the source line holding the new one.
            out = dict(locate(eff_flat))
            for path in kept & out.keys():
                out[path] = start_origins.get(path, "default")
            return out

        snapshot = self._make_snapshot(effective, eff_flat, live.version + 1, Origins(located))
        batches = [(reg, reg.select(plan.applied)) for reg in self._registrations]
        tx = _transaction.run(
            [b for b in batches if b[1]],
            snapshot,
            live,
            span=self._tracing.step,
            scrub=self._scrubber(self._live_flat, eff_flat),
        )
        if tx.outcome is not Outcome.APPLIED:
            for applier in tx.failed:
                self._metrics.applier_failed(applier)
            if tx.outcome is Outcome.DEGRADED:
                self._healthy = False
            return self._result(
                tx.outcome, t0, trigger, actor, errors=tx.errors, rejected=plan.rejected, attempted=plan.applied
            )
        self._commit(snapshot, eff_flat, inputs)
        self._live_pending = plan.rejected
        self._healthy = True
        return self._result(
            Outcome.APPLIED, t0, trigger, actor, applied=plan.applied, rejected=plan.rejected, previous=live.version
        )

    def _plan(self, candidate: C) -> tuple[Plan, Any, dict[str, Any]]:
        """Diff live vs candidate, give each change its action, and build the effective
        config: the candidate's hot leaves over the live restart-only ones."""
        cand_flat = self._flatten(candidate)
        changes = diff(self._live_flat, cand_flat, self.schema)
        hot = [c for c in changes if c.policy is Policy.HOT]
        rejected = [c for c in changes if c.policy is not Policy.HOT]
        if self.strict and rejected:
            hot, rejected = [], changes
        steps = [
            PlannedChange(c, Action.APPLY, tuple(r.name for r in self._registrations if r.covers(c.path))) for c in hot
        ] + [PlannedChange(c, Action.REJECT) for c in rejected]
        plan = Plan(tuple(steps), strict=self.strict)
        if not hot:
            return plan, self.current, self._live_flat
        if not rejected:
            return plan, candidate, cand_flat
        # Rebuild whichever side needs fewer changes; the rebuilt nodes are validated
        # again, so a cross-field rule holds on what actually goes live.
        try:
            if len(hot) <= len(rejected):
                effective = apply_changes(self.current, hot, self.schema)
            else:
                effective = apply_changes(candidate, [c.inverted() for c in rejected], self.schema)
        except Exception as exc:  # noqa: BLE001 - a validator of the effective config
            issue = Issue(
                "",
                "the hot changes are not valid without the rejected restart-only ones: "
                + scrub(str(exc) or type(exc).__name__, self._secret_values(cand_flat)),
                "effective config",
            )
            return Plan(tuple(steps), errors=(issue,), strict=self.strict), None, {}
        return plan, effective, self._flatten(effective)

    # --- stages -------------------------------------------------------------------------

    def _load(self) -> list[Layer]:
        return _layers.load(self.sources)

    def _structure(self, layers: Sequence[Layer]) -> C:
        return _layers.structure(self._structurer, layers)  # type: ignore[no-any-return]

    def _make_snapshot(self, config: C, flat: dict[str, Any], version: int, located: Origins) -> Snapshot[C]:
        return Snapshot(config, version, digest(flat), _now(), located)

    def _commit(self, snapshot: Snapshot[C], flat: dict[str, Any], inputs: tuple[str, ...] | None) -> None:
        # The commit point: readers see the old config or the new one, never a mix.
        self.snapshot = snapshot
        self.current = snapshot.config
        self._live_flat = flat
        self._live_inputs = self._last_inputs = inputs
        self._history.append(snapshot)

    def _initial_changes(self, flat: dict[str, Any]) -> list[Change]:
        return [Change(p, UNSET, v, *self.schema.policy_of(p)) for p, v in flat.items()]

    def _secret_values(self, *flats: dict[str, Any]) -> list[Any]:
        return [v for flat in flats for p, v in flat.items() if self.schema.policy_of(p)[1]]

    def _scrubber(self, *flats: dict[str, Any]) -> Callable[[str], str]:
        # Collected only when an error message needs scrubbing: a walk over every leaf is
        # most of the fixed cost of a small reload, and a successful one never needs it.
        found: list[list[Any]] = []

        def scrub_secrets(text: str) -> str:
            if not found:
                found.append(self._secret_values(*flats))
            return scrub(text, found[0])

        return scrub_secrets

    def _live(self) -> Snapshot[C]:
        if self.snapshot is None:
            raise StateError(f"reloader {self.name!r} has no config yet: call start() first")
        return self.snapshot

    def _result(
        self,
        outcome: Outcome,
        t0: float,
        trigger: str,
        actor: str | None,
        *,
        applied: Sequence[Change] = (),
        rejected: Sequence[Change] = (),
        errors: Sequence[Issue] = (),
        previous: int | None = None,
        attempted: Sequence[Change] = (),
    ) -> ReloadResult:
        version = self.snapshot.version if self.snapshot else 0
        return ReloadResult(
            outcome,
            version,
            applied=tuple(applied),
            rejected=tuple(rejected),
            errors=tuple(errors),
            duration_s=time.perf_counter() - t0,
            trigger=trigger,
            actor=actor,
            previous_version=previous if previous is not None else version,
            attempted=tuple(attempted),
        )

    def _record(self, result: ReloadResult) -> None:
        """Audit, metrics, log, source reporters, then (on commit) subscribers."""
        self._last = result
        if result.errors:
            self._last_error = "\n".join(str(e) for e in result.errors)
        elif result.outcome is Outcome.APPLIED:
            self._last_error = None
        self._metrics.observe(result, restart_pending=len(self._restart_pending), ts=time.time())
        snapshot = self._live()
        if self.audit is not None and result.outcome is not Outcome.UNCHANGED:
            try:
                self.audit.record(result, config=self.name, digest=snapshot.digest)
            except Exception:
                log.exception("config %r: could not write the audit record", self.name)
        log_result(result, name=self.name)
        for source in self._reporters:
            try:
                source.report(result, snapshot)
            except Exception:
                log.exception("config %r: %r could not report the reload", self.name, source)
        if result.outcome is Outcome.APPLIED and result.trigger != "start":
            for callback in list(self._subscribers):
                try:
                    callback(result)
                except Exception:
                    log.exception("config %r: subscriber %r failed", self.name, callback)

    # --- reading ------------------------------------------------------------------------

    @contextlib.contextmanager
    def pin(self) -> Iterator[C]:
        """Pin the live snapshot for this block (and the tasks/threads that copy its
        context): `pinned()` returns it until the block ends, whatever reloads happen.
        Nested pins keep the outermost snapshot."""
        outer = self._pin.get()
        snapshot = outer if outer is not None else self._live()
        token = self._pin.set(snapshot)
        try:
            yield snapshot.config
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
        return self._restart_pending

    def status(self) -> dict[str, Any]:
        """Version, health, last outcome and error, and restart-pending paths."""
        snap = self.snapshot
        last = self._last
        return {
            "name": self.name,
            "state": self._state.value,
            "healthy": self._healthy,
            "version": snap.version if snap else None,
            "digest": snap.digest if snap else None,
            "loaded_at": snap.loaded_at.isoformat() if snap else None,
            "last_outcome": last.outcome.value if last else None,
            "last_trigger": last.trigger if last else None,
            "last_error": self._last_error,
            "restart_pending": [c.path for c in self._restart_pending],
        }

"""The Reloader: the one place that knows every stage of the pipeline.

    trigger -> sources -> merge -> structure + validate -> plan
            -> transaction (appliers, rollback) -> commit (one assignment) -> record

Each stage lives in its own module (`_layers`, `_structure`, `_plan`, `_transaction`,
`_record`, `_trigger`); this one only runs them in order under the write lock and swaps
the resulting `Live` state in. Readers never take the lock: `current` is a plain
attribute that a commit replaces with a single reference assignment.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import os
import signal
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from . import _args, _gc, _paths, _transaction
from ._aio import (
    AsyncAPI,
    AsyncFunctionApplier,
    AsyncSubscriber,
    LoopCaller,
    Streams,
    is_async,
    running_loop,
)
from ._change import Change
from ._errors import ConfigError, StateError, UnknownVersionError
from ._identity import Identity
from ._live import Attempt, Live, State
from ._mask import MaskRules, show
from ._metrics import Metrics
from ._pipeline import Pipeline, live_snapshot
from ._plan import Planner
from ._policy import PolicyInput, load_policies
from ._read import NotStarted, Pin, pin_class
from ._record import Fanout, LogRecorder, MetricsRecorder, Recorder, ReporterRecorder, SubscriberRecorder
from ._result import Plan, ReloadResult
from ._routes import Route, Routes, applier_name
from ._schema import Schema
from ._snapshot import Snapshot
from ._tracing import Tracing
from ._transaction import Deadline
from ._trigger import Coalescer, Triggers
from ._typing import Reporter, Source
from ._values import version_number
from ._workers import Workers

if TYPE_CHECKING:
    import asyncio  # imported where used: `import selreload` stays free of asyncio

    from prometheus_client import CollectorRegistry

__all__ = ["Reloader", "State"]

C = TypeVar("C")
A = TypeVar("A")
F = TypeVar("F", bound=Callable[..., Any])

_log = logging.getLogger("selreload.reload")


def _source(name: str, value: object) -> Source:
    return _args.having("Reloader", name, value, ("load", "watch"), "a source such as sr.YamlFile(path)")  # type: ignore[return-value]


_APPLIER_ARGS = ("changes", "snapshot")
_MAX_HISTORY = 1_000_000  # snapshots kept for rollback(); each holds a whole config


def _actor(where: str, actor: object) -> None:
    # It reaches the log line of the attempt and its audit record (the trigger too, and
    # its metric label: reload() checks that one).
    if actor is not None:
        _args.text(where, "actor", actor)


def _recorder(name: str, value: object) -> Recorder:
    return _args.having("Reloader", name, value, ("record",), "a recorder (an object with record(result, live))")  # type: ignore[return-value]


class Reloader(AsyncAPI, Generic[C]):
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
        loop: the event loop async appliers and subscribers run on; by default the one
            `astart()` (or `async with`) runs in.
        mask: which leaves are secret by name (`sr.MaskRules`); default: `password`,
            `secret`, `token`, `*_key`, `credentials` and their kin. Masking only.
        instance: this process's name among the workers of the service, in audit records,
            results, `status()`, spans and the control directory (default `hostname:pid`,
            taken at each use, so a worker forked after start names itself).
        state_dir: a control directory shared by the workers of this service on this host
            (see `reloader.workers`): each worker's ACK/NACK, runtime overrides as the top
            source layer, and service-wide reload and rollback.

    Raises:
        PolicyError: a policy file glob matches no field or loosens a secret.
        TypeError, ValueError: an argument of the wrong type or value; the message starts
            with `Reloader: <argument>`.
    """

    # Slots: `current` is read on every request, and a slot load is the fastest attribute
    # read CPython has (a plain attribute still: no property, no Python code runs).
    __slots__ = (
        "__weakref__",
        "_call",
        "_coalescer",
        "_identity",
        "_inside_reload",
        "_pin",
        "_pipeline",
        "_streams",
        "_subscribers",
        "_tracing",
        "_triggers",
        "_write",
        "audit",
        "current",
        "name",
        "pin",
        "registry",
        "schema",
        "snapshot",
        "sources",
        "workers",
    )

    current: C
    """The live config: a plain attribute read, no lock, no copy."""

    pin: Callable[[], Pin[C]]
    """`with reloader.pin() as cfg:` pins the live snapshot for the block (and the
    tasks/threads that copy its context): `pinned()` returns it until the block ends,
    whatever reloads happen. Nested pins keep the outermost snapshot.

    An attribute holding this Reloader's `Pin` class, not a method: the method's own
    frame was ~10% of a pin (benchmarks/bench_core.py), which PinMiddleware pays per request.
    """

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
        loop: asyncio.AbstractEventLoop | None = None,
        mask: MaskRules | None = None,
        instance: str | None = None,
        state_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        where = "Reloader"
        name = _args.text(where, "name", name)
        # A deque's maxlen is a C ssize_t: 2**63 raised OverflowError.
        history = _args.count(where, "history", history, maximum=_MAX_HISTORY)
        strict = _args.flag(where, "strict", strict)
        if applier_timeout is not None:
            applier_timeout = _args.positive_seconds(where, "applier_timeout", applier_timeout)
        _args.one_of(where, "on_audit_failure", on_audit_failure, ("refuse", "degrade"))
        sources = _args.each(where, "sources", sources, _source)
        recorders = _args.each(where, "recorders", recorders, _recorder)
        if audit is not None:
            _args.having(where, "audit", audit, ("record",), "an sr.AuditLog (audit=sr.AuditLog(path))")
        if registry is not None:
            _args.having(where, "registry", registry, ("register", "collect"), "a prometheus_client CollectorRegistry")
        if tracer_provider is not None:
            _args.having(where, "tracer_provider", tracer_provider, ("get_tracer",), "an OpenTelemetry TracerProvider")
        if mask is not None and not isinstance(mask, MaskRules):
            raise TypeError(f"{where}: mask must be an sr.MaskRules, got {_args.got(mask)}")
        if loop is not None:
            _args.having(where, "loop", loop, ("call_soon_threadsafe", "is_closed"), "an asyncio event loop")
        self.name = name
        self.schema = Schema(schema, policies=load_policies(policies), mask=mask)
        self._identity = identity = Identity(instance)
        self.workers: Workers | None = None
        """The control directory shared with the other workers (`state_dir=`), or None."""
        if state_dir is not None:
            self.workers = Workers(state_dir, identity=identity, name=name)
            sources, recorders = (*sources, self.workers.overrides), (*recorders, self.workers.reporter)
        self.sources: tuple[Source, ...] = tuple(sources)
        self.audit = audit
        # Kept for the admin app's GET /metrics.
        from prometheus_client import REGISTRY  # here, not at import: see _metrics

        self.registry = registry if registry is not None else REGISTRY
        metrics = Metrics(name, registry)
        self._tracing = Tracing(tracer_provider, instance=identity)
        self._subscribers: list[Callable[[ReloadResult], None]] = []
        # Reporters found once: an isinstance() against a runtime Protocol costs ~10 us.
        reporters = [ReporterRecorder(s) for s in self.sources if isinstance(s, Reporter)]
        self._call = LoopCaller(
            Deadline(applier_timeout, name=name) if applier_timeout else _transaction.inline, applier_timeout
        )
        self._call.loop = loop
        self._streams = Streams()
        self._pipeline: Pipeline[C] = Pipeline(
            name=name,
            schema=self.schema,
            sources=self.sources,
            planner=Planner(self.schema, strict=strict),
            routes=Routes(),
            metrics=metrics,
            tracing=self._tracing,
            record=Fanout(
                [
                    MetricsRecorder(metrics),
                    LogRecorder(name),
                    *reporters,
                    *recorders,
                    self._streams,
                    SubscriberRecorder(self._subscribers, name),
                ],
                name=name,
            ),
            audit=audit,
            refuse_unaudited=on_audit_failure == "refuse",
            call=self._call,
            history=history,
            commit=self._commit,
            instance=identity,
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
        self._coalescer = Coalescer(self._drain, inside=self._inside, name=name)
        self._triggers = Triggers(self.sources, self._coalescer, name=name)
        # A weak reference: the global registry must not keep every Reloader alive.
        this = weakref.ref(self)
        metrics.watch_health(lambda: (r := this()) is not None and r._healthy())
        for source in self.sources:  # a source that reports health with its status (etcd)
            bind = getattr(source, "bind_health", None)
            if callable(bind):
                bind(lambda: (r := this()) is not None and r._healthy())
            # A source that runs fleet commands (etcd: `selreload rollback`) and checks
            # fleet overrides against the schema gets this Reloader, weakly.
            bind_reloader = getattr(source, "bind_reloader", None)
            if callable(bind_reloader):
                bind_reloader(this)
        self.snapshot: Snapshot[C] | None = None
        self.current = NotStarted(name)  # type: ignore[assignment]
        self.pin = pin_class(self._pin, self)
        if self.workers is not None:
            self.workers.bind(self)

    @property
    def instance(self) -> str:
        """This process's name among the workers of the service (`hostname:pid` unless set)."""
        return self._identity()

    def _commit(self, snapshot: Snapshot[C]) -> None:
        # The commit point: readers see the old config or the new one, never a mix.
        self.current = snapshot.config
        self.snapshot = snapshot

    def __repr__(self) -> str:
        live = self._pipeline.live
        version = live.snapshot.version if live.snapshot else None
        return f"<Reloader {self.name!r} {self.schema.cls.__name__} {live.state.value} v{version}>"

    @property
    def strict(self) -> bool:
        """A restart-only change rejects the whole reload, hot changes included."""
        return self._pipeline.planner.strict

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._pipeline.live.state

    def start(self) -> Snapshot[C]:
        """Load and validate the config, apply it to every applier, and start watching.

        Watchers start first, so a change that lands while the initial config loads
        becomes a reload right after start instead of being missed.

        Raises:
            ConfigError: the initial config is invalid (fail fast).
            ApplyError: an applier failed on the initial values (the others are undone).
            StateError: already running.
        """
        pipeline = self._pipeline
        if pipeline.live.state is State.RUNNING:
            raise StateError(f"reloader {self.name!r} is already running")
        if any(is_async(r.applier) for r in pipeline.routes) or any(
            isinstance(s, AsyncSubscriber) for s in self._subscribers
        ):
            self._call.usable_loop()  # before anything runs: a clear error, not a hang
        self._triggers.start()
        try:
            with self._write, self._tracing.reload("start") as span:
                pipeline.start(Attempt("start", span=span))
                pipeline.live = pipeline.live.evolve(state=State.RUNNING)
            if self.workers is not None:
                self.workers.started()
        except BaseException:
            # Outside the lock: a watcher thread may be waiting for it to reload.
            self._triggers.stop()
            raise
        return live_snapshot(pipeline.live)

    def stop(self) -> None:
        """Stop every watcher (joining their threads) and restore the signal handlers
        `install_signal_handler()` replaced. `reload()` still works after."""
        self._triggers.stop()
        if self.workers is not None:
            self.workers.stopped()
        if isinstance(self._call.sync, Deadline):
            self._call.sync.close()
        with self._write:
            pipeline = self._pipeline
            if pipeline.live.state is State.RUNNING:
                pipeline.live = pipeline.live.evolve(state=State.STOPPED)

    def install_signal_handler(self, signum: int = signal.SIGHUP) -> None:
        """Reload with trigger `"signal"` whenever `signum` arrives, until `stop()`.

        The handler only wakes a worker thread that runs the reload: a reload inside the
        handler would run in the middle of whatever the main thread was doing.

        Raises:
            RuntimeError: not called from the main thread (only it can set handlers).
        """
        self._triggers.install_signal(signum, self._on_signal)

    def _on_signal(self, trigger: str) -> None:
        if self._pipeline.live.snapshot is None:
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
        _args.text("on()", "path", path)
        if name is not None:
            _args.text("on()", "name", name)
        if not self.schema.paths_matching(path):
            raise ValueError(f"no config field at {path!r}{_paths.hint(path, self.schema.leaves)}")

        def register(target: Any) -> Any:
            wrapped = target
            asynchronous = is_async(target)
            if hasattr(target, "apply") and hasattr(target, "rollback"):
                for method in ("apply", "rollback"):
                    _args.callable_with("on()", method, getattr(target, method), _APPLIER_ARGS)
            else:
                if not callable(target):
                    got = _args.got(target)
                    raise TypeError(f"on(): an applier has apply()/rollback() or is a function, got {got}")
                _args.callable_with("on()", "applier", target, _APPLIER_ARGS)
                wrapped = AsyncFunctionApplier(target) if asynchronous else _transaction.FunctionApplier(target)
            label = name or applier_name(wrapped)
            with self._write:
                pipeline = self._pipeline
                live = pipeline.live
                running = live.snapshot is not None and live.state is State.RUNNING
                if asynchronous and running:
                    self._call.usable_loop()  # a coroutine that cannot run is refused here, loudly
                if running:
                    pipeline.apply_initial(Route(path, wrapped, label), live)
                pipeline.routes.add(path, wrapped, label)
                pipeline.metrics.applier_registered(label)  # a zero series before any failure
            return target

        return register if applier is None else register(applier)

    def subscribe(self, callback: Callable[[ReloadResult], Any]) -> Callable[[ReloadResult], Any]:
        """Call `callback(result)` after every committed reload (usable as a decorator).

        An `async def` callback runs on the app's event loop, not waited for.

        Raises:
            StateError: an async callback while running without an event loop.
        """
        _args.callable_with("subscribe()", "callback", callback, ("result",))
        if inspect.iscoroutinefunction(callback):
            if self._pipeline.live.state is State.RUNNING:
                self._call.usable_loop()
            self._subscribers.append(AsyncSubscriber(callback, self._call))
        else:
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
        _args.text("reload()", "trigger", trigger)
        _actor("reload()", actor)
        self._not_on_the_loop()
        with self._writing(), self._write:
            live = self._require_live()
            with self._tracing.reload(trigger) as span, _gc.deferred():
                result = self._pipeline.attempt(Attempt(trigger, actor, span=span), live)
        self._coalescer.run_deferred()
        return result

    def _not_on_the_loop(self) -> None:
        # With async appliers, a reload on the loop's own thread would wait for coroutines
        # that loop can never run: refuse it before anything runs.
        loop = self._call.loop
        if loop is not None and running_loop() is loop and any(is_async(r.applier) for r in self._pipeline.routes):
            raise StateError(
                f"reloader {self.name!r}: reload() on the event loop's thread cannot run its async appliers; "
                "use `await reloader.areload()`"
            )

    def request_reload(self, trigger: str = "manual") -> None:
        """Ask for a reload without waiting when one is running: triggers that arrive
        during a reload coalesce into one more reload after it. Watchers call this."""
        _args.text("request_reload()", "trigger", trigger)
        self._coalescer.request(trigger)

    def _drain(self, trigger: str) -> None:
        self.reload(trigger=trigger)

    def _inside(self) -> bool:
        return self._inside_reload.get()

    def _writing(self) -> _Writing:
        """`with reloader._writing():` marks this context as inside a reload, refusing one
        that already is (see `_Writing`)."""
        return _Writing(self)

    def plan(self) -> Plan:
        """What a reload would do now, applying nothing (before start(): what start()
        would apply, every leaf from `UNSET`).

        Takes no lock: it plans against the live state of the moment, and never waits
        for a reload that is running (or hanging in an applier).
        """
        pipeline = self._pipeline
        live = pipeline.live
        try:
            candidate = pipeline.structure(pipeline.load())
        except ConfigError as exc:
            return Plan(errors=exc.issues, strict=self.strict)
        if live.snapshot is None:
            return pipeline.planner.initial_plan(candidate, pipeline.routes)
        return pipeline.planner(live.snapshot.config, live.flat, candidate, pipeline.routes)

    def find_snapshot(self, target: int | str) -> Snapshot[C]:
        """The snapshot in `history` with this version (an int, or digits), or this content
        digest (a str; a unique prefix of 8 or more hex digits will do), newest first.

        Raises:
            UnknownVersionError: none matches (a `KeyError`).
        """
        if isinstance(target, bool) or not isinstance(target, int | str):
            raise TypeError(f"a version is an int or a digest (a str), got {_args.got(target)}")
        history = self._pipeline.history
        text = str(target)
        version = target if isinstance(target, int) else version_number(text)
        if version is not None:
            found = next((s for s in history if s.version == version), None)
        else:
            hits = {s.digest: s for s in reversed(history) if len(text) >= 8 and s.digest.startswith(text)}
            found = next(iter(hits.values())) if len(hits) == 1 else None
        if found is None:
            kept = ", ".join(f"{s.version} ({s.digest[:12]})" for s in history)
            what = f"version {version}" if version is not None else f"digest {show(text, secret=False)}"
            raise UnknownVersionError(f"{what} is not in history (kept: {kept})")
        return found

    def rollback(self, version: int | str, *, actor: str | None = None) -> ReloadResult:
        """Make a snapshot from `history` live again, through the same plan, policies and
        transaction as any reload (restart-only differences are rejected). `version` is a
        version of this process, or a content digest: the name of a config that is the
        same in every worker (see `find_snapshot`).

        Raises:
            UnknownVersionError: `version` is not in `history` (a `KeyError`).
        """
        _actor("rollback()", actor)
        self._not_on_the_loop()
        with self._writing(), self._write:
            live = self._require_live()
            target = self.find_snapshot(version)
            version = target.version
            with self._tracing.reload("rollback") as span:
                # It holds until the sources bring new bytes: the newest inputs seen.
                held = live.tried.inputs if live.tried is not None else (live.held or live.inputs)
                attempt = Attempt("rollback", actor, span=span, rollback_to=version, held=held)
                # What the sources hold is unchanged by a rollback, and so is what of it
                # waits for a restart (restart-only leaves are the same in every version).
                result = self._pipeline.transition(
                    attempt, live, target.config, lambda flat: target.origins, None, pending=live.restart_pending
                )
        self._coalescer.run_deferred()
        return result

    def _require_live(self) -> Live[C]:
        live = self._pipeline.live
        if live.snapshot is None:
            raise StateError(f"reloader {self.name!r} has no config yet: call start() first")
        return live

    # --- reading ------------------------------------------------------------------------

    def pinned(self) -> C:
        """The config pinned in this context, or the live one outside a pin."""
        snapshot = self._pin.get()
        return snapshot.config if snapshot is not None else self.current

    @property
    def history(self) -> list[Snapshot[C]]:
        """The last `history` snapshots that went live, oldest first."""
        return list(self._pipeline.history)

    @property
    def restart_pending(self) -> tuple[Change, ...]:
        """Restart-only changes the sources hold that the live config does not."""
        return self._pipeline.live.restart_pending

    def _dead(self, live: Live[C]) -> str | None:
        """Why a trigger of this running Reloader stopped working, if one did."""
        return self._triggers.dead() if live.state is State.RUNNING else None

    def _healthy(self) -> bool:
        # `status()["healthy"]` without building the status: asked after every attempt
        # by the etcd status and, in multiprocess mode, the metrics.
        live = self._pipeline.live
        return live.healthy and self._dead(live) is None

    def status(self) -> dict[str, Any]:
        """Version, health and why not (a failed rollback, an unwritable audit log, a dead
        watcher), last outcome and error, restart-pending paths and the version a rollback
        went back to: read from one consistent state."""
        live = self._pipeline.live
        status = live.status(self.name, dead=self._dead(live))
        status["instance"] = self._identity()
        if self.workers is not None:
            status["overrides"] = self.workers.status()
            status["state_dir"] = str(self.workers.state.path)
        return status


class _Writing:
    """The "inside a reload" mark of one reload, rollback or override, for its block.

    A reload from inside a reload (an applier or subscriber) would nest a second
    transaction in the first, or wait forever for the lock its caller holds: refused. A
    class, not @contextmanager: ~1 us less per reload.
    """

    __slots__ = ("_reloader", "_token")

    def __init__(self, reloader: Reloader[Any]) -> None:
        self._reloader = reloader

    def __enter__(self) -> None:
        reloader = self._reloader
        if reloader._inside():
            raise StateError(
                f"reloader {reloader.name!r}: reload() or rollback() called from inside a reload "
                "(an applier or subscriber?); call request_reload() to reload after it"
            )
        self._token = reloader._inside_reload.set(True)

    def __exit__(self, *_exc: object) -> None:
        self._reloader._inside_reload.reset(self._token)

"""Every worker of a service, one config: the control directory seen from one Reloader.

`Reloader(..., state_dir=DIR)` gives the Reloader a `Workers` (`reloader.workers`):

- an `Overrides` source, the top layer: `DIR/overrides.json` entries in force (each with
  its actor and expiry, origin `override:<actor>@<ts>`), watched like any file, plus a
  timer that asks for a reload at the earliest expiry, so an override reverts by itself
  in every worker;
- a recorder writing this worker's ACK/NACK to `DIR/workers/<instance>.json` after every
  attempt, and a lock file it holds while it lives (dead workers are recognised);
- the watch of `DIR/control.json`: service-wide commands (reload, rollback to a digest),
  each run once, in order, by every worker's watcher thread;
- the actions that reach every worker (`reload`, `rollback`, `set`, `unset`), each
  written to the directory and answered by how many workers applied it.

Versions count attempts per process, so "version 3" names different configs in two
workers. What means the same everywhere is the content digest of a snapshot
(`Snapshot.digest`, sha256 over every leaf): a rollback goes out by digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _args
from ._change import Policy
from ._errors import ConfigError, Issue
from ._expiry import ExpiryTimer
from ._identity import Identity, hostname
from ._layers import origins
from ._live import Attempt
from ._mask import show
from ._paths import hint, split
from ._result import Outcome, ReloadResult
from ._statedir import Broadcast, StateDir, WorkerRow, active_entries, iso, next_expiry, now_iso, write_json
from ._typing import Layer, NotifyFn, Watcher
from ._values import one_line, recorded_text, to_plain

if TYPE_CHECKING:
    from ._live import Live
    from ._reloader import Reloader
    from ._schema import Schema

log = logging.getLogger("selreload.workers")

TRIGGER_OVERRIDE = "override"
TRIGGER_EXPIRY = "override-expired"
TRIGGER_CONTROL = "control"


def is_new_command(seq: int, done: int, *, where: str) -> bool:
    """Whether the command numbered `seq` is one to run, the last run being `done`.

    A number that went back is a new sequence, not an old command: the record was written
    again from 1 (deleted, its directory or key made anew) or by hand. Taken as old, every
    command after it was ignored here and, worse, ACKed by this worker's report of the
    higher number it ran last. 0 is no record at all.
    """
    if seq == done or seq == 0:  # the same command again (a second event), or no record at all
        return False
    if seq < done:
        log.warning("%s: command #%d after #%d: the sequence started again; running it", where, seq, done)
    return True


def override_origin(entry: Mapping[str, Any]) -> str:
    return f"override:{recorded_text(entry, 'actor')}@{recorded_text(entry, 'ts', '?')}"


def check_override_path(schema: Schema, path: str) -> str | None:
    """Why `path` cannot be overridden (unknown, restart-only), or None."""
    leaf = schema.leaves.get(path)
    if leaf is None:
        root = next((r for r in schema.mapping_paths if path.startswith(r + ".")), None)
        leaf = schema.leaves.get(root) if root is not None else None
    if leaf is None:
        return f"no config field there{hint(path, schema.leaves)}"
    if leaf.policy.value != "hot":
        return "restart-only: an override cannot change it live (restart the service with it)"
    return None


def override_tree(entries: Sequence[Mapping[str, Any]], roots: Sequence[str]) -> dict[str, Any]:
    """The nested tree of override `entries` (`{"path": "a.b", "value": v}`); a key of a
    mapping field (one of `roots`) stays one key, dots and all."""
    tree: dict[Any, Any] = {}
    for entry in entries:
        parts = split(str(entry["path"]), roots)
        if not parts:  # `...`, written by hand: what selreload writes is checked first
            what = f"override of {show(entry['path'], secret=False)}: not a config path"
            raise ConfigError([Issue("", what, override_origin(entry))])
        node = tree
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = node[part] = {}
            node = nxt
        node[parts[-1]] = entry.get("value")
    return tree


class Overrides:
    """The runtime-override layer of a control directory: the top source of a Reloader.

    Expired entries are ignored (and dropped at the next write); the digest covers the
    entries in force, so an expiry is a change even when the file's bytes are not.
    """

    def __init__(self, state: StateDir, *, on_control: Callable[[], None] | None = None) -> None:
        self.state = state
        self.mapping_roots: tuple[str, ...] = ()
        self.seq = 0  # the sequence number of the document the last load() read
        self.active: tuple[Mapping[str, Any], ...] = ()
        self._on_control = on_control
        self._watchers: weakref.WeakSet[_OverridesWatcher] = weakref.WeakSet()

    @property
    def name(self) -> str:
        return "overrides"

    def __repr__(self) -> str:
        return f"Overrides({str(self.state.overrides_path)!r})"

    def load(self) -> Layer:
        now = time.time()
        try:
            doc = self.state.read_overrides()
        except OSError as exc:  # pragma: no cover - read_overrides swallows what it can
            raise ConfigError([Issue("", f"cannot read: {exc}", str(self.state.overrides_path))]) from None
        active = active_entries(doc["entries"], now)
        self.seq, self.active = doc["seq"], tuple(active)
        expiry = next_expiry(active)
        for watcher in list(self._watchers):
            watcher.expire_at(expiry)
        if not active:
            return Layer(self.name, None, "absent")
        canon = json.dumps(active, sort_keys=True, default=str).encode()
        origins = {str(e["path"]): override_origin(e) for e in active}
        return Layer(
            self.name,
            override_tree(active, self.mapping_roots),
            hashlib.sha256(canon).hexdigest(),
            locate=lambda: origins,
        )

    def watch(self, notify: NotifyFn) -> Watcher | None:
        watcher = _OverridesWatcher(self, notify)
        self._watchers.add(watcher)
        watcher.start()
        return watcher


class _OverridesWatcher:
    """Watches overrides.json and control.json, and wakes at the earliest expiry."""

    def __init__(self, source: Overrides, notify: NotifyFn) -> None:
        self._source = source
        self._notify = notify
        self._stopping = False
        self._watches: list[Any] = []
        self._timer = ExpiryTimer(lambda: self._notify(TRIGGER_EXPIRY), name="selreload-override-expiry")

    def start(self) -> None:
        from ._watch import watch_path

        state = self._source.state
        state.ensure()
        self._watches.append(watch_path(state.overrides_path, lambda _t: self._notify(TRIGGER_OVERRIDE), quiet=0.0))
        if self._source._on_control is not None:
            on_control = self._source._on_control
            self._watches.append(watch_path(state.control_path, lambda _t: on_control(), quiet=0.0))

    @property
    def forked(self) -> bool:
        return any(getattr(w, "forked", False) for w in self._watches)

    def alive(self) -> bool:
        return self._stopping or (self._timer.alive() and all(w.alive() for w in self._watches))

    def expire_at(self, when: float | None) -> None:
        self._timer.arm(when)

    def stop(self) -> None:
        # Cancel the expiry first: a stopped worker must not reload (and report, and log)
        # when an override it no longer serves expires.
        self._source._watchers.discard(self)
        self._stopping = True
        self._timer.stop()  # in a forked child its thread is gone: nothing to join
        if self.forked:
            return
        for w in self._watches:
            w.stop()


class _Reporter:
    """This worker's status file and the lock that says it lives (a Recorder)."""

    def __init__(self, workers: Workers) -> None:
        self._workers = workers
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._held_as: str | None = None
        self._pid = os.getpid()
        self._attempt: dict[str, Any] = {}
        self._command: dict[str, Any] = {"command_seq": 0}
        self.started = now_iso()

    def __repr__(self) -> str:
        return f"<worker status in {self._workers.state.workers_path}>"

    def hold(self) -> None:
        from ._statedir import hold_lock

        instance = self._workers.instance()
        if self._pid != os.getpid():
            # Forked: the inherited descriptor shares the parent's open file description
            # (and so its lock); closing it here leaves the parent's lock alone.
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
            self._fd, self._held_as, self._pid = None, None, os.getpid()
        if self._held_as == instance:
            return
        self._workers.state.ensure()
        self._release()
        self._fd = hold_lock(self._workers.state.lock_path(instance))
        self._held_as = instance

    def _release(self) -> None:
        if self._fd is not None and self._held_as is not None:
            with contextlib.suppress(OSError):
                self._workers.state.report_path(self._held_as).unlink()
            with contextlib.suppress(OSError):
                self._workers.state.lock_path(self._held_as).unlink()
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self._held_as = None, None

    def retire(self) -> None:
        """A clean exit: remove this worker's files (a kill leaves them; readers see it dead)."""
        with self._lock:
            if self._pid == os.getpid():
                self._release()

    def record(self, result: ReloadResult, live: Live[Any]) -> None:
        snap = live.snapshot
        overrides = self._workers.overrides
        with self._lock:
            self._attempt = {
                "version": result.version,
                "digest": snap.digest if snap is not None else None,
                "outcome": result.outcome.value,
                "trigger": result.trigger,
                "applied": [c.path for c in result.applied],
                "rejected": [c.path for c in result.rejected],
                "errors": [str(e) for e in result.errors],
                "restart_pending": [c.path for c in live.restart_pending],
                "overrides_seq": overrides.seq,
                "overrides": [_brief(e) for e in overrides.active],
                "healthy": live.healthy,
            }
            self._write()

    def commanded(self, seq: int, outcome: str, errors: Sequence[str]) -> None:
        with self._lock:
            self._command = {"command_seq": seq, "command_outcome": outcome, "command_errors": list(errors)}
            self._write()

    def _write(self) -> None:
        self.hold()
        instance = self._workers.instance()
        doc = {
            "instance": instance,
            "config": self._workers.name,
            "host": hostname(),
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "started": self.started,
            **self._attempt,
            **self._command,
            "ts": now_iso(),
        }
        write_json(self._workers.state.report_path(instance), doc)


def _brief(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: entry.get(k) for k in ("path", "actor", "ts", "expires")}


class Workers:
    """The control directory as one Reloader uses it: `reloader.workers`.

    Service-wide actions (`reload`, `rollback`, `set`, `unset`) write to the directory,
    then wait up to `timeout` seconds for every live worker to answer; each returns a
    `Broadcast` saying how many applied it.
    """

    def __init__(self, path: str | os.PathLike[str], *, identity: Identity, name: str) -> None:
        self.state = StateDir(path)
        self.instance = identity
        self.name = name
        self.overrides = Overrides(self.state, on_control=self._on_control)
        self.reporter = _Reporter(self)
        self._reloader: weakref.ReferenceType[Reloader[Any]] | None = None
        self._command_lock = threading.Lock()
        self._done_seq = 0
        _forks.add(self)

    def __repr__(self) -> str:
        return f"<Workers {str(self.state.path)!r} as {self.instance()!r}>"

    def bind(self, reloader: Reloader[Any]) -> None:
        self._reloader = weakref.ref(reloader)
        self.overrides.mapping_roots = reloader.schema.mapping_paths

    def started(self) -> None:
        """At start: commands written before this worker started are not for it, except
        a rollback that still holds (the sources hold what they held when it was made):
        this worker comes up on the rolled-back config too, as the others run it."""
        self.state.ensure()
        self.state.workers(prune=True)  # housekeeping: the files of workers long dead
        with self._command_lock:
            command = self.state.read_command()
            self._done_seq = command["seq"]
            reloader = self._reloader() if self._reloader is not None else None
            answer = self._replay(reloader, command) if reloader is not None else None
        outcome, errors = answer if answer is not None else ("none", [])
        self.reporter.commanded(self._done_seq, outcome, errors)

    def _replay(self, reloader: Reloader[Any], command: Mapping[str, Any]) -> tuple[str, list[str]] | None:
        """Make the latest rollback live here, from the values it carries, if it still holds."""
        values, held = command.get("values"), command.get("held")
        if command.get("action") != "rollback" or not isinstance(values, dict) or not isinstance(held, list):
            return None
        pipeline = reloader._pipeline
        actor, ts = recorded_text(command, "actor"), recorded_text(command, "ts", "?")
        with reloader._writing(), reloader._write:
            live = pipeline.live
            if live.snapshot is None or live.inputs is None or list(live.inputs) != held:
                return None  # the sources moved on since the rollback: it no longer holds anywhere
            if live.snapshot.digest == command.get("target"):
                return Outcome.UNCHANGED.value, []
            entries = [{"path": p, "value": v} for p, v in values.items()]
            origin = f"rollback:{actor}@{ts}"
            tree = override_tree(entries, self.overrides.mapping_roots)
            name = f"rollback#{command.get('seq')}"
            layer = Layer("rollback", tree, name, locate=lambda: dict.fromkeys(values, origin))
            try:
                layers = [*pipeline.load(), layer]
                candidate = pipeline.structure(layers)
            except ConfigError as exc:
                return Outcome.INVALID.value, [str(i) for i in exc.issues]
            with reloader._tracing.reload("rollback") as span:
                attempt = Attempt("rollback", actor, span=span, held=tuple(live.inputs))
                result = pipeline.transition(
                    attempt, live, candidate, lambda flat: origins(flat, layers), None, pending=live.restart_pending
                )
        reloader._coalescer.run_deferred()
        return result.outcome.value, [str(e) for e in result.errors]

    def stopped(self) -> None:
        self.reporter.retire()

    def _after_fork(self) -> None:
        self._command_lock = threading.Lock()
        self.reporter._lock = threading.Lock()
        if self.reporter._held_as is not None:
            with contextlib.suppress(OSError):
                self.reporter.commanded(self._done_seq, "none", ())  # this worker's own record

    # --- this worker running commands -------------------------------------------------

    def _on_control(self) -> None:
        reloader = self._reloader() if self._reloader is not None else None
        if reloader is None:
            return
        with self._command_lock:
            command = self.state.read_command()
            seq = command["seq"]
            new = is_new_command(seq, self._done_seq, where=str(self.state.control_path))
            self._done_seq = seq  # the record's number, always: a deleted record (0) starts again
            if not new:
                return
            outcome, errors = self._run(reloader, command)
            self.reporter.commanded(seq, outcome, errors)

    def _run(self, reloader: Reloader[Any], command: Mapping[str, Any]) -> tuple[str, list[str]]:
        action = command.get("action")
        actor = recorded_text(command, "actor") if command.get("actor") is not None else None
        try:
            if action == "reload":
                result = reloader.reload(TRIGGER_CONTROL, actor)
            elif action == "rollback":
                result = reloader.rollback(str(command.get("target")), actor=actor)
            else:
                return "unknown", [f"unknown command {one_line(repr(action))}"]
        except KeyError as exc:
            return "unknown", [str(exc.args[0] if exc.args else exc)]
        except Exception as exc:  # noqa: BLE001 - reported to the issuer, this worker goes on
            return "failed", [f"{type(exc).__name__}: {exc}"]
        return result.outcome.value, [str(e) for e in result.errors]

    # --- service-wide actions ---------------------------------------------------------

    def reload(self, *, actor: str | None = None, timeout: float = 5.0) -> Broadcast:
        """Every worker reloads from its sources."""
        return self.command("reload", actor=actor, timeout=timeout)

    def rollback(self, target: int | str, *, actor: str | None = None, timeout: float = 5.0) -> Broadcast:
        """Every worker makes the snapshot with this digest live again; a version is this
        worker's and is sent as the digest it names here.

        Raises:
            UnknownVersionError: `target` is in none of this worker's history.
        """
        reloader = self._require()
        snapshot = reloader.find_snapshot(target)
        live = reloader._pipeline.live
        held = live.tried.inputs if live.tried is not None else (live.held or live.inputs)
        # What a worker started later needs to come up on it too: the hot leaves (the only
        # ones a rollback changes live), secrets left out of the file (they come from the
        # sources), and the inputs the rollback holds against.
        schema, flat = reloader.schema, reloader._pipeline.planner.flatten(snapshot.config)
        values = {
            path: to_plain(value)
            for path, value in flat.items()
            if (policy := schema.policy_of(path))[0] is Policy.HOT and not policy[1]
        }
        extra = {"values": values, "held": list(held) if held is not None else None}
        return self.command("rollback", target=snapshot.digest, actor=actor, timeout=timeout, extra=extra)

    def command(
        self,
        action: str,
        *,
        target: str | None = None,
        actor: str | None,
        timeout: float,
        extra: Mapping[str, Any] | None = None,
    ) -> Broadcast:
        if actor is not None:
            _args.text(f"workers.{action}()", "actor", actor)
        seq = self.state.write_command(action, actor=actor or "unknown", target=target, extra=extra)

        def judge(row: WorkerRow) -> bool | None:
            if row.seq("command_seq") < seq:
                return None
            return row.get("command_outcome") in _OK_ANSWERS

        return self.state.wait(action, seq, judge, timeout=timeout)

    def check(self, values: Mapping[str, Any], unset: Sequence[str] = ()) -> list[Issue]:
        """Why these overrides would be refused here, or []: an unknown or restart-only
        path, or a value the schema's validation refuses (the plan of a reload with them,
        against this worker's live config and sources)."""
        reloader = self._require()
        problems = [
            Issue(path, why, "override") for path in values if (why := check_override_path(reloader.schema, path))
        ]
        if problems:
            return problems
        now = time.time()
        entries = [e for e in self.overrides.active if e.get("path") not in {*values, *unset}]
        entries += [{"path": p, "value": v, "actor": "check", "ts": iso(now)} for p, v in values.items()]
        origins = {str(e["path"]): override_origin(e) for e in entries}
        tree = override_tree(entries, self.overrides.mapping_roots) or None
        candidate = Layer("overrides", tree, "candidate", locate=lambda: origins)
        pipeline = reloader._pipeline
        live = pipeline.live
        try:
            layers = [s.load() for s in pipeline.sources if s is not self.overrides]
            config = pipeline.structure([*layers, candidate])
        except ConfigError as exc:
            return list(exc.issues)
        if live.snapshot is None:
            return []
        plan = pipeline.planner(live.snapshot.config, live.flat, config, pipeline.routes)
        refused = [
            Issue(c.path, "restart-only: an override cannot change it live", "override")
            for c in plan.rejected
            if c.path in values
        ]
        return [*plan.errors, *refused]

    def set(
        self, values: Mapping[str, Any], *, actor: str, ttl: float | None = None, timeout: float = 5.0
    ) -> Broadcast:
        """Override `values` (`{dotted path: value}`) in every worker, for `ttl` seconds
        (None: until unset). Checked here first; a worker that refuses it anyway (its
        other sources differ) makes it undone everywhere, as `set_overrides` does.

        Raises:
            ConfigError: refused here (nothing written): an unknown or restart-only path,
                or a value validation refuses.
        """
        problems = self.check(values)
        if problems:
            raise ConfigError(problems)
        return set_overrides(self.state, values, actor=actor, ttl=ttl, timeout=timeout)

    def unset(self, paths: Sequence[str], *, actor: str, timeout: float = 5.0) -> Broadcast:
        return set_overrides(self.state, {}, unset=paths, actor=actor, timeout=timeout)

    def status(self) -> list[dict[str, Any]]:
        """The overrides in force here: path, actor, since, until (values not shown)."""
        return [_brief(e) for e in self.overrides.active]

    def _require(self) -> Reloader[Any]:
        reloader = self._reloader() if self._reloader is not None else None
        if reloader is None:  # pragma: no cover - the Reloader owns us
            raise RuntimeError("this control directory's Reloader is gone")
        return reloader


_OK_ANSWERS = frozenset(o.value for o in Outcome if o.ok)


def set_overrides(
    state: StateDir,
    values: Mapping[str, Any],
    *,
    unset: Sequence[str] = (),
    actor: str,
    ttl: float | None = None,
    timeout: float = 5.0,
) -> Broadcast:
    """Write overrides and wait for every live worker; if any refuses them (invalid, a
    restart-only path), take them back out so one bad entry does not block every later
    reload, and return the refusal."""
    _args.text("overrides", "actor", actor)  # in every worker's log line and audit record
    seq, _ = state.write_overrides(set=values, unset=unset, actor=actor, ttl=ttl)
    paths = set(values)

    def judge(row: WorkerRow) -> bool | None:
        if row.seq("overrides_seq") < seq:
            return None
        return row.ok and not paths & set(row.get("rejected") or ())

    answer = state.wait("set" if values else "unset", seq, judge, timeout=timeout)
    if answer.refused and values:
        state.write_overrides(unset=list(values), actor=actor)
    return answer


class _Forks:
    def __init__(self) -> None:
        self._all: weakref.WeakSet[Workers] = weakref.WeakSet()
        self._registered = False

    def add(self, workers: Workers) -> None:
        self._all.add(workers)
        if not self._registered and hasattr(os, "register_at_fork"):
            self._registered = True
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        for workers in list(self._all):
            try:
                workers._after_fork()
            except Exception:
                log.exception("could not report this worker after fork")


_forks = _Forks()

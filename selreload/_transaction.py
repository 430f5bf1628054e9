"""Run appliers as one transaction: all succeed, or the ones that ran are undone."""

from __future__ import annotations

import contextlib
import contextvars
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from . import _tracing
from ._change import Change
from ._errors import ApplierTimeoutError, Issue
from ._mask import Guard
from ._result import Outcome
from ._routes import Batch
from ._snapshot import Snapshot

SpanFactory = Callable[[str, str], contextlib.AbstractContextManager[Any]]


_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


def _no_span(_kind: str, _name: str) -> contextlib.AbstractContextManager[None]:
    return _NO_SPAN


class FunctionApplier:
    """Adapts a plain function: rolled back by calling it again with inverted changes."""

    __slots__ = ("fn", "name")

    def __init__(self, fn: Callable[[Sequence[Change], Snapshot[Any]], None]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__qualname__", None) or repr(fn)

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        self.fn(changes, snapshot)

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        self.fn(tuple(c.inverted() for c in changes), snapshot)

    def __repr__(self) -> str:
        return f"<function applier {self.name}>"


@attrs.frozen
class TransactionResult:
    """How the appliers' transaction ended.

    Attributes:
        outcome: APPLIED, ROLLED_BACK or DEGRADED.
        errors: one issue per failed apply or rollback.
        failed: names of the appliers whose apply or rollback raised (or hung).
        raised: what must propagate to the caller once the attempt is recorded
            (`KeyboardInterrupt`, `SystemExit`, a cancelled task), else `None`.
    """

    outcome: Outcome
    errors: tuple[Issue, ...] = ()
    failed: tuple[str, ...] = ()
    raised: BaseException | None = None


_NO_SECRETS = Guard()  # callers with a config pass `_mask.guard(schema, flats...)`


def _must_propagate(exc: BaseException) -> bool:
    # An Exception is a failed applier; so is GeneratorExit, which means nothing outside
    # a generator. The rest (KeyboardInterrupt, SystemExit, CancelledError) is the process
    # or task being told to stop: undo, record, then let it stop.
    return not isinstance(exc, Exception | GeneratorExit)


def run(
    batches: Sequence[Batch],
    new: Snapshot[Any],
    old: Snapshot[Any],
    *,
    span: SpanFactory = _no_span,
    guard: Guard = _NO_SECRETS,
    call: Caller | None = None,
) -> TransactionResult:
    """Call each applier with its batch; on the first failure roll back, newest first.

    Anything an applier raises, `BaseException` included, aborts the transaction. The
    failing applier itself is not rolled back: it raised, so it owns its partial state
    (and one that hung past its deadline may still be running: that cannot be undone,
    so the outcome is DEGRADED). Every rollback is attempted even when one of them fails.

    With a deadline worker and several appliers, the calls go to the worker together
    (`Deadline.run_all`): one thread handoff per transaction instead of one per call.
    """
    invoke = call if call is not None else inline
    done: list[Batch] = []
    steps = [("apply", route.name, route.applier.apply, (changes, new)) for route, changes in batches]
    together = _together(invoke, steps)
    if together is not None:
        for (route, changes), exc in zip(batches, together(steps, span, stop=True), strict=False):
            if exc is not None:
                return _aborted(route, changes, exc, done, old, span=span, guard=guard, call=invoke)
            done.append((route, changes))
        return TransactionResult(Outcome.APPLIED)
    for (route, changes), (kind, name, fn, args) in zip(batches, steps, strict=True):
        try:
            with span(kind, name):
                invoke(fn, *args)
        except BaseException as exc:  # noqa: BLE001 - any applier failure aborts the transaction
            return _aborted(route, changes, exc, done, old, span=span, guard=guard, call=invoke)
        done.append((route, changes))
    return TransactionResult(Outcome.APPLIED)


def _aborted(
    route: Any,
    changes: Sequence[Change],
    exc: BaseException,
    done: Sequence[Batch],
    old: Snapshot[Any],
    *,
    span: SpanFactory,
    guard: Guard,
    call: Caller,
) -> TransactionResult:
    """`route`'s applier raised `exc`: undo the ones that ran before it."""
    paths = ", ".join(c.path for c in changes)
    errors = [Issue(route.pattern, guard.failure(f"applier {route.name} failed on {paths}", exc))]
    failed = [route.name]
    raised = exc if _must_propagate(exc) else None
    undone = undo(done, old, span=span, guard=guard, call=call)
    errors.extend(undone.errors)
    failed.extend(undone.failed)
    raised = raised or undone.raised
    hung = isinstance(exc, ApplierTimeoutError)
    outcome = Outcome.DEGRADED if undone.failed or hung else Outcome.ROLLED_BACK
    return TransactionResult(outcome, tuple(errors), tuple(failed), raised)


def undo(
    done: Sequence[Batch],
    old: Snapshot[Any],
    *,
    span: SpanFactory = _no_span,
    guard: Guard = _NO_SECRETS,
    call: Caller | None = None,
) -> TransactionResult:
    """Roll back appliers that ran, newest first; every rollback is attempted.

    Returns ROLLED_BACK when all of them succeeded, else DEGRADED with their errors.
    """
    invoke = call if call is not None else inline
    errors: list[Issue] = []
    failed: list[str] = []
    raised: BaseException | None = None
    newest_first = list(reversed(done))
    steps = [("rollback", route.name, route.applier.rollback, (changes, old)) for route, changes in newest_first]
    together = _together(invoke, steps)
    if together is not None:
        outcomes = together(steps, span, stop=False)
    else:
        outcomes = []
        for kind, name, fn, args in steps:
            try:
                with span(kind, name):
                    invoke(fn, *args)
            except BaseException as exc:  # noqa: BLE001
                outcomes.append(exc)
            else:
                outcomes.append(None)
    for (route, _), error in zip(newest_first, outcomes, strict=True):
        if error is not None:
            errors.append(Issue(route.pattern, guard.failure(f"rollback of {route.name} failed", error)))
            failed.append(route.name)
            if raised is None and _must_propagate(error):
                raised = error
    outcome = Outcome.DEGRADED if failed else Outcome.ROLLED_BACK
    return TransactionResult(outcome, tuple(errors), tuple(failed), raised)


# --- deadlines ----------------------------------------------------------------------------

Caller = Callable[..., None]
"""Calls `fn(changes, snapshot)`: inline, or on a worker thread with a deadline."""


def inline(fn: Callable[..., None], *args: Any) -> None:
    fn(*args)


Step = tuple[str, str, Callable[..., None], tuple[Any, ...]]
"""One applier call of a transaction: kind (`apply`, `rollback`), applier name, fn, args."""

Together = Callable[..., list[BaseException | None]]
"""`together(steps, span, stop=...)`: runs the steps in order (see `Deadline.run_all`)."""


def _together(invoke: Caller, steps: Sequence[Step]) -> Together | None:
    """The caller's way to make these calls in one handoff, if it has one for them (one
    call goes as it always did)."""
    batched = getattr(invoke, "batched", None)
    return batched([step[2] for step in steps]) if batched is not None and len(steps) > 1 else None


class _Call:
    __slots__ = ("args", "context", "done", "error", "fn")

    def __init__(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        # The caller's context: pins, OpenTelemetry's current span and the Reloader's
        # "inside a reload" mark travel with the call to the worker thread.
        self.context = contextvars.copy_context()
        # A bare lock, held until the worker is done: waiting on it is one C call, where a
        # threading.Event's Condition costs ~100 us more per applier call (measured).
        self.done = threading.Lock()
        self.done.acquire()
        self.error: BaseException | None = None

    def run(self) -> None:  # on the worker
        try:
            self.context.run(self.fn, *self.args)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            self.error = exc
        finally:
            self.done.release()


class _Steps:
    """A transaction's calls, run in order on the worker; the caller watches each one's
    deadline through `started` and `outcomes`, which change together under `lock`."""

    __slots__ = ("abandoned", "context", "done", "finished", "lock", "outcomes", "span", "started", "steps", "stop")

    def __init__(self, steps: Sequence[Step], span: SpanFactory, stop: bool) -> None:
        self.steps = steps
        self.span = span
        self.stop = stop
        self.context = contextvars.copy_context()  # each call runs in a copy of it, as _Call's
        self.done = threading.Lock()
        self.done.acquire()
        self.lock = threading.Lock()
        self.outcomes: list[BaseException | None] = []  # one per step that returned or raised
        self.started = time.monotonic()  # when the step running now began (its deadline's start)
        self.finished = False
        self.abandoned = False  # the caller stopped waiting: a step hung

    def run(self) -> None:  # on the worker
        try:
            last = len(self.steps) - 1
            for i, (kind, name, fn, args) in enumerate(self.steps):
                try:
                    self.context.copy().run(self._call, kind, name, fn, args)
                    exc: BaseException | None = None
                except BaseException as error:  # noqa: BLE001 - handed to the waiting caller
                    exc = error
                with self.lock:
                    if self.abandoned:
                        return  # reported as hung: a late outcome changes nothing, nor runs more
                    self.outcomes.append(exc)
                    if i == last or (exc is not None and self.stop):
                        self.finished = True
                        return
                    self.started = time.monotonic()
        finally:
            self.done.release()

    def _call(self, kind: str, name: str, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        with self.span(kind, name) as span:
            fn(*args)
            if self.abandoned and span is not None:
                # It returned after its deadline: its span says so, as the caller did.
                _tracing.failed(span, ApplierTimeoutError.__name__)

    def wait(self, timeout: float) -> int | None:
        """Wait until the steps finish (None), or until one runs past `timeout`: the
        index of that step, now abandoned."""
        while True:
            with self.lock:
                if self.finished:
                    return None
                running, started = len(self.outcomes), self.started
            left = started + timeout - time.monotonic()
            if left > 0:
                # Woken by the end of the last step, or at this step's deadline: a later
                # step is then running on a clock of its own, and the wait goes on.
                self.done.acquire(timeout=left)
                continue
            with self.lock:
                if self.finished:
                    return None
                if len(self.outcomes) == running:  # still on that step, past its deadline
                    self.abandoned = True
                    return running


class Deadline:
    """Runs applier calls on a worker thread and stops waiting after `timeout` seconds.

    A thread cannot be killed: an applier that hangs keeps its worker, which is then
    abandoned (it exits once the call returns) and the next call gets a new one. What
    matters is that the reload lock is released, so other threads' `reload()`,
    `rollback()` and HTTP requests go on.
    """

    __slots__ = ("_lock", "_name", "_pid", "_queue", "timeout")

    def __init__(self, timeout: float, *, name: str) -> None:
        self.timeout = timeout
        self._name = name
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Call | _Steps | None] | None = None
        self._pid = 0

    def __call__(self, fn: Callable[..., None], *args: Any) -> None:
        call = _Call(fn, args)
        self._worker().put(call)
        if not call.done.acquire(timeout=self.timeout):
            self._abandon()
            raise self._timed_out()
        if call.error is not None:
            raise call.error

    def batched(self, fns: Sequence[Callable[..., Any]]) -> Together:
        """How `run()` calls several appliers in one handoff: `run_all`."""
        return self.run_all

    def run_all(self, steps: Sequence[Step], span: SpanFactory, *, stop: bool) -> list[BaseException | None]:
        """Run `steps` in order on the worker, each in its `span` and under its own
        deadline, with one handoff for all of them (a handoff costs ~0.06-0.1 ms of CPU).

        Returns one outcome per step attempted: None, or what it raised (for one that hung,
        an `ApplierTimeoutError`). With `stop`, the first failure ends the run (a
        transaction's applies); without, every step is attempted (its rollbacks), the
        ones after a hung step on a new worker.
        """
        outcomes: list[BaseException | None] = []
        while len(outcomes) < len(steps):
            batch = _Steps(steps[len(outcomes) :], span, stop)
            self._worker().put(batch)
            hung = batch.wait(self.timeout)
            outcomes += batch.outcomes  # the worker appends none once it is abandoned
            if hung is None:
                break
            self._abandon()
            outcomes.append(self._timed_out())
            if stop:
                break
        return outcomes

    def _timed_out(self) -> ApplierTimeoutError:
        return ApplierTimeoutError(
            f"did not return within {self.timeout:g} s (it may still be running: its effect cannot be undone)"
        )

    def _worker(self) -> queue.SimpleQueue[_Call | _Steps | None]:
        with self._lock:
            # A new worker after fork() too: the parent's thread does not exist in a child.
            if self._queue is None or self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                thread = threading.Thread(
                    target=_serve, args=(self._queue,), name=f"selreload-apply {self._name}", daemon=True
                )
                thread.start()
            return self._queue

    def _abandon(self) -> None:
        with self._lock:
            stuck, self._queue = self._queue, None
        if stuck is not None:
            stuck.put(None)  # the stuck worker exits when (if) its call returns

    def close(self) -> None:
        self._abandon()


def _serve(calls: queue.SimpleQueue[_Call | _Steps | None]) -> None:
    while True:
        call = calls.get()
        if call is None:
            return
        call.run()
        del call

"""Run appliers as one transaction: all succeed, or the ones that ran are undone."""

from __future__ import annotations

import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import attrs

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
    """
    invoke = call if call is not None else inline
    done: list[Batch] = []
    for route, changes in batches:
        try:
            with span("apply", route.name):
                invoke(route.applier.apply, changes, new)
        except BaseException as exc:  # noqa: BLE001 - any applier failure aborts the transaction
            paths = ", ".join(c.path for c in changes)
            errors = [Issue(route.pattern, guard.failure(f"applier {route.name} failed on {paths}", exc))]
            failed = [route.name]
            raised = exc if _must_propagate(exc) else None
            undone = undo(done, old, span=span, guard=guard, call=invoke)
            errors.extend(undone.errors)
            failed.extend(undone.failed)
            raised = raised or undone.raised
            hung = isinstance(exc, ApplierTimeoutError)
            outcome = Outcome.DEGRADED if undone.failed or hung else Outcome.ROLLED_BACK
            return TransactionResult(outcome, tuple(errors), tuple(failed), raised)
        done.append((route, changes))
    return TransactionResult(Outcome.APPLIED)


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
    for route, changes in reversed(done):
        try:
            with span("rollback", route.name):
                invoke(route.applier.rollback, changes, old)
        except BaseException as exc:  # noqa: BLE001
            errors.append(Issue(route.pattern, guard.failure(f"rollback of {route.name} failed", exc)))
            failed.append(route.name)
            if raised is None and _must_propagate(exc):
                raised = exc
    outcome = Outcome.DEGRADED if failed else Outcome.ROLLED_BACK
    return TransactionResult(outcome, tuple(errors), tuple(failed), raised)


# --- deadlines ----------------------------------------------------------------------------

Caller = Callable[..., None]
"""Calls `fn(changes, snapshot)`: inline, or on a worker thread with a deadline."""


def inline(fn: Callable[..., None], *args: Any) -> None:
    fn(*args)


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
        self._queue: queue.SimpleQueue[_Call | None] | None = None
        self._pid = 0

    def __call__(self, fn: Callable[..., None], *args: Any) -> None:
        call = _Call(fn, args)
        self._worker().put(call)
        if not call.done.acquire(timeout=self.timeout):
            self._abandon()
            raise ApplierTimeoutError(
                f"did not return within {self.timeout:g} s (it may still be running: its effect cannot be undone)"
            )
        if call.error is not None:
            raise call.error

    def _worker(self) -> queue.SimpleQueue[_Call | None]:
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


def _serve(calls: queue.SimpleQueue[_Call | None]) -> None:
    while True:
        call = calls.get()
        if call is None:
            return
        try:
            call.context.run(call.fn, *call.args)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            call.error = exc
        finally:
            call.done.release()
            del call

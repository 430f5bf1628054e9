"""Run appliers as one transaction: all succeed, or the ones that ran are undone."""

from __future__ import annotations

import contextlib
import fnmatch
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from ._change import Change
from ._errors import Issue
from ._paths import matches as glob_matches
from ._result import Outcome
from ._snapshot import Snapshot

log = logging.getLogger("selreload")

SpanFactory = Callable[[str, str], contextlib.AbstractContextManager[Any]]


@contextlib.contextmanager
def _no_span(_kind: str, _name: str) -> Iterator[None]:
    yield None


class FunctionApplier:
    """Adapts a plain function: rolled back by calling it again with inverted changes."""

    __slots__ = ("fn", "name")

    def __init__(self, fn: Callable[[Sequence[Change], Snapshot[Any]], None]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__qualname__", None) or repr(fn)

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        self.fn(changes, snapshot)

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        self.fn([c.inverted() for c in changes], snapshot)

    def __repr__(self) -> str:
        return f"<function applier {self.name}>"


@attrs.frozen(eq=False)
class Registration:
    """An applier and the path (or glob) it was registered for."""

    pattern: str
    applier: Any
    name: str

    def covers(self, path: str) -> bool:
        if glob_matches(self.pattern, path):
            return True
        # `feature_flags.*` covers `feature_flags.x`; a glob also covers paths under a match.
        return any(ch in self.pattern for ch in "*?[") and fnmatch.fnmatchcase(path, self.pattern)

    def select(self, changes: Sequence[Change]) -> list[Change]:
        return [c for c in changes if self.covers(c.path)]


def applier_name(applier: Any) -> str:
    name = getattr(applier, "name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(applier, "__qualname__", None) or type(applier).__name__


@attrs.frozen
class TransactionResult:
    outcome: Outcome
    errors: tuple[Issue, ...] = ()
    failed: tuple[str, ...] = ()  # names of appliers (and rollbacks) that raised


def run(
    batches: Sequence[tuple[Registration, list[Change]]],
    new: Snapshot[Any],
    old: Snapshot[Any],
    *,
    span: SpanFactory = _no_span,
    scrub: Callable[[str], str] = lambda s: s,
) -> TransactionResult:
    """Call each applier with its batch; on the first failure roll back, newest first.

    The failing applier itself is not rolled back: it raised, so it owns its partial
    state. Every rollback is attempted even when one of them raises (DEGRADED).
    """
    done: list[tuple[Registration, list[Change]]] = []
    for reg, changes in batches:
        try:
            with span("apply", reg.name):
                reg.applier.apply(changes, new)
        except Exception as exc:  # noqa: BLE001 - any applier failure aborts the transaction
            paths = ", ".join(c.path for c in changes)
            errors = [Issue(reg.pattern, scrub(f"applier {reg.name} failed on {paths}: {_exc_text(exc)}"))]
            failed = [reg.name]
            for done_reg, done_changes in reversed(done):
                try:
                    with span("rollback", done_reg.name):
                        done_reg.applier.rollback(done_changes, old)
                except Exception as rexc:  # noqa: BLE001
                    errors.append(
                        Issue(done_reg.pattern, scrub(f"rollback of {done_reg.name} failed: {_exc_text(rexc)}"))
                    )
                    failed.append(done_reg.name)
            outcome = Outcome.DEGRADED if len(failed) > 1 else Outcome.ROLLED_BACK
            return TransactionResult(outcome, tuple(errors), tuple(failed))
        done.append((reg, changes))
    return TransactionResult(Outcome.APPLIED)


def _exc_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

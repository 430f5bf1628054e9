"""What a reload attempt produces: `Outcome`, `Plan`, `ReloadResult`."""

from __future__ import annotations

import enum
from typing import Any

import attrs

from ._change import Change
from ._errors import Issue


class Outcome(enum.Enum):
    """How a reload attempt ended."""

    APPLIED = "applied"
    """Hot changes are live (restart-only ones, if any, were rejected)."""
    UNCHANGED = "unchanged"
    """Nothing differs from the live config."""
    REJECTED = "rejected"
    """Only restart-only changes (or any, in strict mode): nothing applied."""
    INVALID = "invalid"
    """The candidate failed to parse or validate; the live config stays."""
    ROLLED_BACK = "rolled_back"
    """An applier failed; every applier already run was undone; the live config stays."""
    DEGRADED = "degraded"
    """An applier failed and so did a rollback: side effects may be half-applied."""

    @property
    def ok(self) -> bool:
        """The live config is one that was validated and fully applied: False for
        INVALID, ROLLED_BACK and DEGRADED."""
        return self in _OK

    @property
    def deterministic(self) -> bool:
        """The same inputs lead to this outcome again (it does not depend on appliers)."""
        return self in _DETERMINISTIC


_OK = frozenset({Outcome.APPLIED, Outcome.UNCHANGED, Outcome.REJECTED})
_DETERMINISTIC = _OK | {Outcome.INVALID}


class Action(enum.Enum):
    """What the plan does with one change."""

    APPLY = "apply"
    REJECT = "reject"


@attrs.frozen(repr=False)
class PlannedChange:
    """One change and its fate: applied (through `appliers`, possibly none) or rejected."""

    change: Change
    action: Action
    appliers: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return self.describe()

    def describe(self, *, appliers: bool = True) -> str:
        """The action in words; without `appliers`, just `apply` (a plan made outside the
        service, as by the CLI, does not know which appliers it has)."""
        if self.action is Action.REJECT:
            return "reject: restart required"
        if not appliers:
            return "apply"
        if self.appliers:
            return "apply via " + ", ".join(self.appliers)
        return "apply (snapshot only)"

    def __repr__(self) -> str:
        return f"PlannedChange({self.change!r}, {self.reason})"


@attrs.frozen(repr=False, eq=False)
class Plan:
    """The result of everything up to the transaction: what a reload would do.

    Attributes:
        steps: every change with its action, hot ones first in path order.
        errors: parse and validation issues; when present, nothing would be applied.
        strict: restart-only changes block the hot ones too.
    """

    _steps: tuple[PlannedChange, ...] | None = attrs.field(default=(), alias="steps")
    errors: tuple[Issue, ...] = ()
    strict: bool = False
    # What the planner built on the way, for the Reloader's transaction: the config that
    # would go live, its flattened leaves and each applier's batch of changes.
    effective: Any = attrs.field(default=None, repr=False)
    effective_flat: Any = attrs.field(default=None, repr=False)
    batches: Any = attrs.field(default=(), repr=False)
    # The planner's own lists. A reload reads `applied` and `rejected`, never `steps`:
    # the steps (a `PlannedChange` per change, ~1 us each) are made when first asked for,
    # from these and the appliers per path. Without them (`Plan(steps)`), the lists are
    # read from the steps. Each is computed once, then kept (the plan is immutable).
    _applied: tuple[Change, ...] | None = attrs.field(default=None, repr=False, alias="_applied")
    _rejected: tuple[Change, ...] | None = attrs.field(default=None, repr=False, alias="_rejected")
    _appliers: Any = attrs.field(default=None, repr=False, alias="_appliers")

    @property
    def steps(self) -> tuple[PlannedChange, ...]:
        steps = self._steps
        if steps is None:
            names = self._appliers or {}
            steps = tuple(
                [PlannedChange(c, Action.APPLY, names.get(c.path, ())) for c in self.applied]
                + [PlannedChange(c, Action.REJECT) for c in self.rejected]
            )
            object.__setattr__(self, "_steps", steps)
        return steps

    @property
    def applied(self) -> tuple[Change, ...]:
        applied = self._applied
        if applied is None:
            applied = tuple(s.change for s in self.steps if s.action is Action.APPLY)
            object.__setattr__(self, "_applied", applied)
        return applied

    @property
    def rejected(self) -> tuple[Change, ...]:
        rejected = self._rejected
        if rejected is None:
            rejected = tuple(s.change for s in self.steps if s.action is Action.REJECT)
            object.__setattr__(self, "_rejected", rejected)
        return rejected

    @property
    def outcome(self) -> Outcome:
        """The outcome this plan leads to if every applier succeeds."""
        if self.errors:
            return Outcome.INVALID
        if self.applied:
            return Outcome.APPLIED
        return Outcome.REJECTED if self.rejected else Outcome.UNCHANGED

    def __eq__(self, other: object) -> bool:
        # What the plan says, as before the steps were made lazily: not what it carries.
        if not isinstance(other, Plan):
            return NotImplemented
        return (self.steps, self.errors, self.strict) == (other.steps, other.errors, other.strict)

    def __hash__(self) -> int:
        return hash((self.steps, self.errors, self.strict))

    def table(self, *, appliers: bool = True) -> str:
        """A fixed-width table of every change, secrets masked (or the errors, or
        `no changes`); see `_present.plan_table`."""
        from ._present import plan_table  # `_present` renders results: it imports this module

        return plan_table(self, appliers=appliers)

    def __repr__(self) -> str:
        return f"Plan(outcome={self.outcome.value}, steps={list(self.steps)!r}, errors={len(self.errors)})"

    def __str__(self) -> str:
        return self.table()


@attrs.frozen(repr=False)
class ReloadResult:
    """What one reload attempt did.

    Attributes:
        outcome: how it ended.
        version: the live version afterwards (unchanged unless `outcome` is APPLIED).
        applied: hot changes that went live (empty unless APPLIED).
        rejected: restart-only changes refused (they stay pending until a restart).
        errors: parse/validation issues, or the applier/rollback failures.
        duration_s: wall time of the attempt.
        trigger: what started it (`start`, `manual`, `file`, `signal`, `http`, `etcd`, `rollback`).
        actor: who asked, when known (HTTP caller, CLI user).
        previous_version: the live version before the attempt.
        attempted: for ROLLED_BACK and DEGRADED, the hot changes the transaction tried and
            undid (what an operator needs to know to retry or to repair).
        failed: names of the appliers whose apply or rollback raised.
        rollback_to: for a rollback, the version it made live again (or tried to).
        instance: the Reloader that ran it (`Reloader.instance`, `hostname:pid` unless set).
    """

    outcome: Outcome
    version: int
    applied: tuple[Change, ...] = ()
    rejected: tuple[Change, ...] = ()
    errors: tuple[Issue, ...] = ()
    duration_s: float = 0.0
    trigger: str = "manual"
    actor: str | None = None
    previous_version: int = 0
    attempted: tuple[Change, ...] = ()
    failed: tuple[str, ...] = ()
    rollback_to: int | None = None
    instance: str | None = None

    @property
    def ok(self) -> bool:
        """False for INVALID, ROLLED_BACK and DEGRADED."""
        return self.outcome.ok

    def __repr__(self) -> str:
        return (
            f"ReloadResult({self.outcome.value}, version={self.version}, "
            f"applied={list(self.applied)!r}, rejected={list(self.rejected)!r}, "
            f"errors={[str(e) for e in self.errors]!r}, trigger={self.trigger!r}, "
            f"duration_s={self.duration_s:.6f})"
        )

    __str__ = __repr__

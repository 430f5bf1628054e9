"""The planner as a pure function: live vs candidate -> steps, errors and the effective config."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import selreload as sr
from selreload._change import UNSET
from selreload._plan import Planner, plan
from selreload._result import Action
from selreload._routes import Routes
from selreload._schema import Schema


@sr.config
class Limits:
    low: int = sr.hot(default=1)
    high: int = sr.hot(default=10)

    @high.validator
    def _above_low(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < self.low:
            raise ValueError(f"must be at least low ({self.low})")


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    level: str = sr.hot(default="info")
    token: str = sr.secret(default="")
    flags: dict[str, bool] = sr.hot(factory=dict)
    limits: Limits = sr.field(factory=Limits)
    floor: int = sr.restart_only(default=0)


SCHEMA = Schema(App)


def test_hot_changes_are_applied_and_restart_only_ones_rejected() -> None:
    """A mixed candidate: the hot leaf is applied, the restart-only one rejected, and the
    effective config holds the new hot value over the live restart-only one."""
    p = plan(SCHEMA, App(), App(port=9000, level="debug"))
    assert [(s.change.path, s.action) for s in p.steps] == [("level", Action.APPLY), ("port", Action.REJECT)]
    assert p.effective == App(level="debug")
    assert p.outcome is sr.Outcome.APPLIED


def test_strict_rejects_everything_when_anything_is_restart_only() -> None:
    """Strict mode: one restart-only change rejects the hot ones too; the live config stays."""
    p = plan(SCHEMA, App(), App(port=9000, level="debug"), strict=True)
    assert {s.change.path for s in p.steps if s.action is Action.REJECT} == {"level", "port"}
    assert p.outcome is sr.Outcome.REJECTED
    assert p.effective == App()


def test_no_difference_is_unchanged() -> None:
    """Equal configs plan to UNCHANGED with no steps."""
    p = plan(SCHEMA, App(flags={"a": True}), App(flags={"a": True}))
    assert p.steps == () and p.outcome is sr.Outcome.UNCHANGED


def test_mapping_keys_are_planned_per_key() -> None:
    """A mapping field diffs per key: added, changed and removed keys are separate steps."""
    p = plan(SCHEMA, App(flags={"a": True, "b": True}), App(flags={"a": False, "c": True}))
    got = {(s.change.path, s.change.old, s.change.new) for s in p.steps}
    assert got == {("flags.a", True, False), ("flags.c", UNSET, True), ("flags.b", True, UNSET)}


def test_an_effective_config_that_fails_validation_is_an_error() -> None:
    """The hot change alone breaks a cross-field rule once the restart-only one is held
    back: the plan carries the error and nothing would be applied."""
    # Through a policy file, `limits.high` is restart-only: the new low would go live
    # beside the old high.
    held_high = Schema(App, policies=[sr.PolicySet(restart=("limits.high",))])
    p = plan(held_high, App(limits=Limits(low=1, high=10)), App(limits=Limits(low=20, high=25)))
    assert p.outcome is sr.Outcome.INVALID
    assert "not valid without the rejected restart-only ones" in str(p.errors[0])
    assert p.errors[0].origin == "effective config"


def test_a_secret_quoted_by_the_effective_validator_is_masked() -> None:
    """The error of an invalid effective config never quotes a secret value."""

    @sr.config
    class WithSecret:
        token: str = sr.secret(default="", hot=True)
        n: int = sr.restart_only(default=0)

        @token.validator
        def _check(self, attribute: attrs.Attribute[str], value: str) -> None:
            if self.n == 0 and value == "hunter2-marker":
                raise ValueError(f"token {value} needs n > 0")

    p = plan(Schema(WithSecret), WithSecret(n=0, token="a"), WithSecret(n=5, token="hunter2-marker"))
    assert p.outcome is sr.Outcome.INVALID
    assert "hunter2-marker" not in str(p.errors[0])
    assert p.errors[0].message == (
        "the hot changes are not valid without the rejected restart-only ones (ValueError); "
        "its message is withheld because it quotes a secret"
    )


def test_steps_name_the_appliers_a_change_goes_to() -> None:
    """With routes, each applied step lists its appliers in registration order and the
    plan holds each applier's batch."""
    routes = Routes()
    routes.add("flags.*", object(), "flags")
    routes.add("level", object(), "level")
    routes.add("", object(), "never")  # matches nothing: "" is no path
    p = plan(SCHEMA, App(), App(level="debug", flags={"x": True}), routes)
    assert {s.change.path: s.appliers for s in p.steps} == {"level": ("level",), "flags.x": ("flags",)}
    assert [(route.name, [c.path for c in changes]) for route, changes in p.batches] == [
        ("flags", ["flags.x"]),
        ("level", ["level"]),
    ]


def test_initial_plan_applies_every_leaf_from_unset() -> None:
    """What start() would do: every leaf, old value UNSET."""
    p = Planner(SCHEMA).initial_plan(App(flags={"a": True}))
    assert all(s.change.old is UNSET and s.action is Action.APPLY for s in p.steps)
    assert {s.change.path for s in p.steps} >= {"port", "level", "flags.a", "limits.low"}


levels = st.sampled_from(["debug", "info", "warning"])
ports = st.integers(1, 3)
flag_maps = st.dictionaries(st.sampled_from("abc"), st.booleans(), max_size=3)


@given(levels, ports, flag_maps, levels, ports, flag_maps)
def test_effective_config_is_candidate_hot_over_live_restart_only(
    l1: str, p1: int, f1: dict[str, bool], l2: str, p2: int, f2: dict[str, bool]
) -> None:
    """For any pair: the effective config takes every hot leaf from the candidate and
    every restart-only leaf from the live config; rejected steps are exactly the
    restart-only differences."""
    live, candidate = App(port=p1, level=l1, flags=f1), App(port=p2, level=l2, flags=f2)
    p = plan(SCHEMA, live, candidate)
    assert not p.errors
    assert p.effective == App(port=p1, level=l2, flags=f2)
    assert {c.path for c in p.rejected} == ({"port"} if p1 != p2 else set())


def test_planning_does_not_touch_its_inputs() -> None:
    """Pure: the live and candidate instances are the same objects and equal afterwards."""
    live, candidate = App(), App(level="debug")
    before = (attrs.asdict(live), attrs.asdict(candidate))
    plan(SCHEMA, live, candidate)
    assert (attrs.asdict(live), attrs.asdict(candidate)) == before


@pytest.mark.parametrize("strict", [False, True])
def test_planner_keeps_its_strictness(strict: bool) -> None:
    """A Planner plans with the strictness it was built with."""
    assert Planner(SCHEMA, strict=strict).strict is strict


@given(levels, ports, flag_maps, levels, ports, flag_maps, st.booleans())
def test_a_plan_reads_the_same_as_one_made_from_its_steps(
    l1: str, p1: int, f1: dict[str, bool], l2: str, p2: int, f2: dict[str, bool], strict: bool
) -> None:
    """The planner hands its lists over and the steps are made when asked for: applied,
    rejected, outcome, equality and hash are those of `Plan(steps)`, whichever is read
    first."""
    routes = Routes()
    routes.add("flags", object(), "flags")
    routes.add("level", object(), "level")
    live, candidate = App(port=p1, level=l1, flags=f1), App(port=p2, level=l2, flags=f2)
    lazy = plan(SCHEMA, live, candidate, routes, strict=strict)
    first = plan(SCHEMA, live, candidate, routes, strict=strict)
    _ = first.steps  # one plan made its steps before anything else was read, one after
    eager = sr.Plan(steps=first.steps, strict=strict)
    for p in (lazy, first):
        assert (p.applied, p.rejected, p.outcome) == (eager.applied, eager.rejected, eager.outcome)
        assert p == eager and hash(p) == hash(eager)
    assert lazy.steps == eager.steps
    hot = [s for s in eager.steps if s.action is Action.APPLY]
    assert [s.change for s in hot] == list(eager.applied)
    assert all(s.appliers == (s.change.path.split(".")[0],) for s in hot)
    assert (sr.Plan().outcome, sr.Plan(strict=strict) == eager) == (sr.Outcome.UNCHANGED, not eager.steps)

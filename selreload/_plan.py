"""Planning: live vs candidate -> every change with its action, and the effective config.

A pure stage: no I/O, no locks, no appliers run. The Reloader, `selreload plan`, `check`
and `push` all call it; none of them needs a Reloader to know what a reload would do.
"""

from __future__ import annotations

import functools
from typing import Any

from . import _mask
from ._change import UNSET, Change, Policy
from ._diff import Digester, Flat, Flattener, Tree, apply_changes, updated
from ._errors import Issue
from ._result import Action, Plan, PlannedChange
from ._routes import Routes
from ._schema import Schema


class Planner:
    """Plans reloads for one schema (its flattener, tree and digester are compiled once).

    The cost of a plan follows what changed, not the size of the config: the diff walks
    live and candidate together and skips every subtree they share (the structurer gives
    back the live instance of an unchanged subtree), the effective leaves are the live
    ones with the changes made, and `digest` re-hashes only the subtrees it has not seen.

    Args:
        schema: the compiled schema.
        strict: a restart-only change rejects the whole reload, hot changes included.
    """

    __slots__ = ("digest", "flatten", "schema", "strict", "tree")

    def __init__(self, schema: Schema, *, strict: bool = False) -> None:
        self.schema = schema
        self.strict = strict
        self.flatten = Flattener(schema)
        self.tree = Tree(schema)
        self.digest = Digester(schema)

    def __call__(self, live: Any, live_flat: Flat, candidate: Any, routes: Routes | None = None) -> Plan:
        """Diff `live` (flattened as `live_flat`) against `candidate`.

        Hot changes are applied, restart-only ones rejected (all of them in strict mode).
        The plan's `effective` config is the candidate's hot leaves over the live
        restart-only ones, validated as a whole; when that fails, the plan holds the
        error and nothing would be applied.
        """
        changes = self.tree.diff(live, candidate)
        rejected = [c for c in changes if c.policy is not Policy.HOT]
        hot = [c for c in changes if c.policy is Policy.HOT] if rejected else changes  # one pass, mostly
        if self.strict and rejected:
            hot, rejected = [], changes
        batches, names = routes.route(hot) if routes is not None else ([], {})
        # The steps are made from these when asked for (`Plan.steps`): a reload never does.
        made = functools.partial(
            Plan, steps=None, strict=self.strict, _applied=tuple(hot), _rejected=tuple(rejected), _appliers=names
        )
        if not hot:
            return made(effective=live, effective_flat=live_flat)
        if not rejected:
            eff_flat = updated(live_flat, changes)
            return made(effective=candidate, effective_flat=eff_flat, batches=batches)
        # Rebuild whichever side needs fewer changes; the rebuilt nodes are validated
        # again, so a cross-field rule holds on what actually goes live.
        try:
            if len(hot) <= len(rejected):
                effective = apply_changes(live, hot, self.schema)
            else:
                effective = apply_changes(candidate, [c.inverted() for c in rejected], self.schema)
        except Exception as exc:  # noqa: BLE001 - a validator of the effective config
            head = "the hot changes are not valid without the rejected restart-only ones"
            message = _mask.guard(self.schema, live_flat, updated(live_flat, changes)).failure(head, exc)
            return made(errors=(Issue("", message, "effective config"),))
        # The leaves of what was rebuilt, read back from it: a converter that ran again
        # on a rebuilt node may have changed more than the changes said.
        eff_flat = updated(live_flat, self.tree.diff(live, effective))
        return made(effective=effective, effective_flat=eff_flat, batches=batches)

    def initial_plan(self, candidate: Any, routes: Routes | None = None) -> Plan:
        """What start() does with `candidate`: every leaf applied from `UNSET`."""
        flat = self.flatten(candidate)
        changes = self.initial(flat)
        names = routes.route(changes)[1] if routes is not None else {}
        steps = tuple(PlannedChange(c, Action.APPLY, names.get(c.path, ())) for c in changes)
        return Plan(steps, strict=self.strict, effective=candidate, effective_flat=flat)

    def initial(self, flat: Flat) -> list[Change]:
        """Every leaf as a change from `UNSET`: what appliers get at start-up."""
        policy_of = self.schema.policy_of
        return [Change(p, UNSET, v, *policy_of(p)) for p, v in flat.items()]


def plan(
    schema: Schema,
    live: Any,
    candidate: Any,
    routes: Routes | None = None,
    *,
    strict: bool = False,
) -> Plan:
    """What reloading from `live` to `candidate` would do (see `Planner`)."""
    planner = Planner(schema, strict=strict)
    return planner(live, planner.flatten(live), candidate, routes)

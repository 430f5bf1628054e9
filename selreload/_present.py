"""Showing changes, plans and reload results to people (tables, blocks) and to JSON."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from ._change import Change
from ._mask import plain, render
from ._result import Action, Outcome, Plan, ReloadResult
from ._text import table

RESTART = "reject: restart required"


def change_to_json(change: Change) -> dict[str, Any]:
    """A change as JSON-ready data, secret values masked and `UNSET` as `null`."""
    return {
        "path": change.path,
        "old": plain(change.old, secret=change.secret),
        "new": plain(change.new, secret=change.secret),
        "policy": change.policy.value,
        "secret": change.secret,
    }


def result_to_json(result: ReloadResult) -> dict[str, Any]:
    """A reload result as JSON-ready data (secrets masked)."""
    return {
        "outcome": result.outcome.value,
        "version": result.version,
        "previous_version": result.previous_version,
        "trigger": result.trigger,
        "actor": result.actor,
        "applied": [change_to_json(c) for c in result.applied],
        "attempted": [change_to_json(c) for c in result.attempted],
        "rejected": [change_to_json(c) for c in result.rejected],
        "errors": [str(e) for e in result.errors],
        "duration_s": result.duration_s,
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """A plan as JSON-ready data: outcome, every change with its action, errors."""
    return {
        "outcome": plan.outcome.value,
        "changes": [
            change_to_json(s.change) | {"action": "apply" if s.action is Action.APPLY else RESTART} for s in plan.steps
        ],
        "errors": [str(e) for e in plan.errors],
    }


def plan_table(plan: Plan) -> str:
    """Every change of a plan (path, old, new, policy, action), secrets masked."""
    return plan.table(appliers=False)


# --- a reload as a short block for a terminal ----------------------------------------------

_COLORS = {"green": "32", "yellow": "33", "red": "31", "magenta": "35", "dim": "2", "bold": "1"}
_OUTCOME_COLOR = {
    Outcome.APPLIED: "green",
    Outcome.UNCHANGED: "dim",
    Outcome.REJECTED: "yellow",
    Outcome.INVALID: "red",
    Outcome.ROLLED_BACK: "red",
    Outcome.DEGRADED: "magenta",
}


class Painter:
    """ANSI colors when writing to a terminal, plain text otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, color: str) -> str:
        if not self.enabled:
            return text
        return f"\x1b[{_COLORS[color]}m{text}\x1b[0m"


def _clock() -> str:
    return datetime.datetime.now().strftime("%H:%M:%S")


def narrate(result: ReloadResult, *, paint: Painter) -> str:
    """A reload as a few lines a person enjoys reading: what changed, what waits for a
    restart, and where an error is (`file:line:col`)."""
    color = _OUTCOME_COLOR[result.outcome]
    ms = f"{result.duration_s * 1000:.1f} ms"
    who = f", by {result.actor}" if result.actor else ""
    if result.trigger == "start":
        head = f"v{result.version} {paint('started', color)}"
    elif result.outcome is Outcome.APPLIED:
        head = f"v{result.previous_version} -> v{result.version}  {paint('applied', color)}"
    else:
        head = f"v{result.version}  {paint(result.outcome.value.upper(), color)}"
    head = f"{paint(_clock(), 'dim')} reload {head}  ({result.trigger}{who}, {ms})"
    if result.outcome is Outcome.REJECTED:
        head += " - only restart-only changes, nothing applied"
    elif result.outcome in (Outcome.INVALID, Outcome.ROLLED_BACK):
        head += f" - v{result.version} stays live"
    elif result.outcome is Outcome.DEGRADED:
        head += " - a rollback failed too: restart this service"
    rows: list[Sequence[str]] = []
    for c in result.applied:
        rows.append(("   " + c.path, f"{render(c.old, secret=c.secret)} -> {render(c.new, secret=c.secret)}", ""))
    for c in result.rejected:
        rows.append(
            (
                " ! " + c.path,
                f"{render(c.old, secret=c.secret)} -> {render(c.new, secret=c.secret)}",
                paint("restart pending", "yellow"),
            )
        )
    lines = [head]
    if rows:
        lines.append(table(rows))
    lines.extend("   " + paint(str(e), "red") for e in result.errors)
    return "\n".join(lines)


def narrate_denied(*, actor: str, action: str, reason: str, paint: Painter) -> str:
    """A refused admin call as one line."""
    return f"{paint(_clock(), 'dim')} {paint('DENIED', 'red')} {action} from {actor}: {reason}"

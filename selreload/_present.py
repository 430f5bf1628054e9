"""The one renderer: changes, plans, results, explanations, fleet and audit, for people and JSON."""

from __future__ import annotations

import datetime
import typing
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._mask import MASK, plain, render, to_json
from ._result import Outcome
from ._text import table
from ._values import one_line

if TYPE_CHECKING:
    from ._change import Change
    from ._explain import Explanation
    from ._fleet import FleetStatus
    from ._result import Plan, ReloadResult
    from ._schema import Schema


# --- one change ------------------------------------------------------------------------------


def _arrow(old: str, new: str) -> str:
    return f"{old} -> {new}"


def transition(change: Change) -> str:
    """`old -> new`, each value as JSON (`"info"`, `"15m"`, `true`), secrets masked."""
    return _arrow(render(change.old, secret=change.secret), render(change.new, secret=change.secret))


def change_line(change: Change) -> str:
    """`path old -> new`, secrets masked: a change in a log line or a narrated block."""
    return f"{change.path} {transition(change)}"


def change_to_json(change: Change, *, action: str | None = None, mark_secret: bool = True) -> dict[str, Any]:
    """A change as JSON-ready data, secret values masked and `UNSET` as `null`.

    Keys, in this order: `path`, `old`, `new`, `policy`, then `secret` (unless
    `mark_secret` is False) and `action` (when given). The audit record's change is
    `change_to_json(c, action=..., mark_secret=False)`: its key order is part of the
    hashed canonical JSON, so it must not move.
    """
    data: dict[str, Any] = {
        "path": change.path,
        "old": plain(change.old, secret=change.secret),
        "new": plain(change.new, secret=change.secret),
        "policy": change.policy.value,
    }
    if mark_secret:
        data["secret"] = change.secret
    if action is not None:
        data["action"] = action
    return data


# --- plans and results -----------------------------------------------------------------------


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
        "changes": [change_to_json(s.change, action=s.describe(appliers=False)) for s in plan.steps],
        "errors": [str(e) for e in plan.errors],
    }


def plan_table(plan: Plan, *, appliers: bool = True) -> str:
    """Every change of a plan (path, old, new, policy, action), secrets masked; or the
    errors, or `no changes`. Without `appliers`, the action says only `apply` (a plan
    made outside the service, as by the CLI, does not know which appliers it has)."""
    if plan.errors:
        return "\n".join(str(e) for e in plan.errors)
    if not plan.steps:
        return "no changes"
    rows = [("PATH", "OLD", "NEW", "POLICY", "ACTION")]
    for s in plan.steps:
        c = s.change
        old, new = render(c.old, secret=c.secret), render(c.new, secret=c.secret)
        policy = c.policy.value + (" (secret)" if c.secret else "")
        rows.append((c.path, old, new, policy, s.describe(appliers=appliers)))
    return table(rows)


# --- explain and policies --------------------------------------------------------------------


def explain_table(explanations: Iterable[Explanation]) -> str:
    """A fixed-width table, one leaf per line: PATH, VALUE, POLICY, ORIGIN."""
    rows = [("PATH", "VALUE", "POLICY", "ORIGIN")]
    for e in explanations:
        value = e.rendered_value()
        if len(value) > 60:
            value = value[:57] + "..."
        policy = e.policy.value + (", secret" if e.secret else "")
        rows.append((e.path, value, policy, e.origin))
    return table(rows)


def _type_name(tp: Any) -> str:
    """`int`, `timedelta`, `dict[str, bool]`, `str | None`: annotations as people write them."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    text = tp if isinstance(tp, str) else repr(tp)
    for module in ("typing.", "datetime.", "collections.abc.", "pathlib.", "enum."):
        text = text.replace(module, "")
    return text


def policies_table(schema: Schema) -> str:
    """One row per leaf: PATH (`.<key>` under a mapping), TYPE, POLICY, SECRET."""
    rows: list[Sequence[str]] = [("PATH", "TYPE", "POLICY", "SECRET")]
    for leaf in schema.leaves.values():
        path = leaf.path + (".<key>" if leaf.mapping else "")
        secret = "by name" if leaf.by_rule else "yes" if leaf.secret else ""  # by name: a credential rule
        rows.append((path, _type_name(leaf.type), leaf.policy.value, secret))
    return table(rows)


# --- fleet -----------------------------------------------------------------------------------


def _cell(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def fleet_summary(status: FleetStatus) -> str:
    """How many instances run the latest revision, how many refused it, how many wait."""
    total = len(status.rows)
    if status.latest_revision is None:
        return f"{status.key} does not exist in etcd; {total} instances reporting"
    line = f"{status.on_latest} of {total} instances on the latest revision {status.latest_revision}"
    refused = sum(1 for r in status.rows if r.revision == status.latest_revision and not r.acked)
    pending = sum(1 for r in status.rows if r.rejected)
    extra = [f"{refused} refused it"] if refused else []
    extra += [f"{pending} with a restart pending"] if pending else []
    return line + (f" ({', '.join(extra)})" if extra else "")


def fleet_table(status: FleetStatus) -> str:
    """A table, one row per instance, and the summary line."""
    rows = [("INSTANCE", "VERSION", "APPLIED", "LAST", "OUTCOME", "REJECTED", "ERRORS")]
    for r in status.rows:
        first_error = r.errors[0] + (f" (+{len(r.errors) - 1} more)" if len(r.errors) > 1 else "") if r.errors else ""
        first_error = first_error or (r.health or "")
        rows.append(
            (
                r.instance + (" *" if r.candidate else "") + ("" if r.healthy is not False else " (unhealthy)"),
                _cell(r.version),
                _cell(r.applied_revision),
                _cell(r.revision),
                r.outcome,
                _cell(", ".join(r.rejected)),
                _cell(first_error),
            )
        )
    body = table(rows) if status.rows else "no instance reports a status"
    return f"{body}\n{fleet_summary(status)}"


# --- audit records ---------------------------------------------------------------------------


def audit_text(record: dict[str, Any]) -> str:
    """An audit record as `audit show` prints it: a head line, then one line per change
    (values as recorded, so secrets stay masked) and per error."""
    ts = str(record.get("ts", "?"))[:19].replace("T", " ")
    version = record.get("version")
    at = f" v{version}" if version is not None else ""  # a refused call (denied) has no version
    head = f"{ts}  {record.get('config', '?')}{at}  {str(record.get('outcome', '?')).upper()}"
    head += f"  trigger={record.get('trigger')}"
    if record.get("actor"):
        head += f" actor={record['actor']}"
    if isinstance(record.get("count"), int) and record["count"] > 1:
        head += f" (x{record['count']})"
    lines = [head]
    for c in record.get("changes") or []:
        if not isinstance(c, dict):
            continue
        action = "restart pending" if c.get("action") == "reject" else c.get("action", "")
        values = _arrow(_recorded(c.get("old")), _recorded(c.get("new")))
        lines.append(f"    {c.get('path')}: {values}  ({action})")
    lines.extend(f"    ! {e}" for e in record.get("errors") or [])
    # A record is read back from a file anyone with write access could have edited: a
    # newline in a field would print a line of its own, and an escape code could move the
    # cursor over the TAMPERED mark printed above the record.
    return "\n".join(one_line(line) for line in lines)


def _recorded(value: Any) -> str:
    # The audit keeps values as `render` shows them, minus what JSON cannot say: a
    # missing key is null, a secret the string "***" (shown bare, as everywhere).
    return MASK if value == MASK else to_json(value)


# --- a reload as a short block for a terminal ------------------------------------------------

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
    elif result.outcome is Outcome.UNCHANGED:
        head = f"v{result.version}  {paint('recovered', 'green')}"
    elif result.outcome is Outcome.APPLIED:
        head = f"v{result.previous_version} -> v{result.version}  {paint('applied', color)}"
    else:
        head = f"v{result.version}  {paint(result.outcome.value.upper(), color)}"
    head = f"{paint(_clock(), 'dim')} reload {head}  ({result.trigger}{who}, {ms})"
    if result.outcome is Outcome.REJECTED:
        head += " - only restart-only changes, nothing applied"
    elif result.outcome is Outcome.DEGRADED:
        head += " - a rollback failed too: restart this service"
    elif result.outcome is Outcome.UNCHANGED:
        head += " - the sources are valid again and match the live config"
    elif not result.outcome.ok:
        head += f" - v{result.version} stays live"
    rows: list[Sequence[str]] = [("   " + c.path, transition(c), "") for c in result.applied]
    rows += [(" ! " + c.path, transition(c), paint("restart pending", "yellow")) for c in result.rejected]
    if result.outcome in (Outcome.ROLLED_BACK, Outcome.DEGRADED):
        rows += [(" x " + c.path, transition(c), paint("tried, then rolled back", "red")) for c in result.attempted]
    lines = [head]
    if rows:
        lines.append(table(rows))
    lines.extend("   " + paint(str(e), "red") for e in result.errors)
    return "\n".join(lines)


def narrate_denied(*, actor: str, action: str, reason: str, paint: Painter) -> str:
    """A refused admin call as one line."""
    return f"{paint(_clock(), 'dim')} {paint('DENIED', 'red')} {action} from {actor}: {reason}"

"""`_present`, the one renderer: change lines, change JSON, tables, narration, outcomes."""

from __future__ import annotations

import pathlib

import selreload as sr
from selreload import UNSET, Change, Policy
from selreload._audit import canonical, record_hash
from selreload._fleet import FleetRow
from selreload._present import audit_text, change_line, change_to_json, plan_table, transition
from selreload._result import Action, Plan, PlannedChange

SECRET = Change("auth.token", "old-secret", "new-secret", Policy.RESTART_ONLY, secret=True)
LEVEL = Change("logging.level", "info", "debug", Policy.HOT)


def test_change_line_masks_secrets_and_shows_unset() -> None:
    """`path old -> new`, values as people read them; a secret is `***`, a missing side `(absent)`."""
    assert change_line(LEVEL) == 'logging.level "info" -> "debug"'
    assert change_line(SECRET) == "auth.token *** -> ***"
    assert change_line(Change("flags.beta", UNSET, True)) == "flags.beta (absent) -> true"
    assert repr(SECRET) == f"Change('auth.token', {transition(SECRET)}, restart_only)"


def test_change_to_json_forms() -> None:
    """The HTTP/CLI form carries `secret`; the audit form carries `action` instead, keys in
    the order the audit hash covers."""
    assert list(change_to_json(SECRET)) == ["path", "old", "new", "policy", "secret"]
    assert change_to_json(SECRET)["old"] == "***"
    audit = change_to_json(LEVEL, action="apply", mark_secret=False)
    assert list(audit) == ["path", "old", "new", "policy", "action"]
    assert change_to_json(Change("flags.beta", UNSET, True), action="apply")["old"] is None


def test_audit_record_is_built_by_change_to_json_and_hashes_as_before(tmp_path: pathlib.Path) -> None:
    """The record's changes are `change_to_json(..., mark_secret=False)` with its action;
    the hash still covers the canonical JSON in the written key order."""
    log = sr.AuditLog(tmp_path / "a.jsonl")
    result = sr.ReloadResult(sr.Outcome.APPLIED, 2, applied=(LEVEL,), rejected=(SECRET,), previous_version=1)
    rec = log.record(result, config="app", digest="d")
    assert rec["changes"] == [
        change_to_json(LEVEL, action="apply", mark_secret=False),
        change_to_json(SECRET, action="reject", mark_secret=False),
    ]
    body = canonical(rec).decode()
    assert '"changes":[{"path":"logging.level","old":"info","new":"debug","policy":"hot","action":"apply"}' in body
    assert rec["hash"] == record_hash(rec) and sr.verify_audit(tmp_path / "a.jsonl").ok


def test_plan_table_is_the_plans_table() -> None:
    """`Plan.table()` and `str(plan)` delegate to `plan_table`; without appliers the action is `apply`."""
    plan = Plan(steps=(PlannedChange(LEVEL, Action.APPLY, ("LogLevel",)), PlannedChange(SECRET, Action.REJECT)))
    assert plan.table() == plan_table(plan) == str(plan)
    lines = plan_table(plan, appliers=False).splitlines()
    assert lines[1].split() == ["logging.level", '"info"', '"debug"', "hot", "apply"]
    assert lines[2].split()[:5] == ["auth.token", "***", "***", "restart_only", "(secret)"]
    assert lines[2].endswith("reject: restart required")
    assert "apply via LogLevel" in plan.table()
    assert Plan().table() == "no changes"


def test_fleet_ack_is_outcome_ok() -> None:
    """An instance ACKs a revision exactly when its outcome is an ok one; unknown ones are NACKs."""
    for outcome in sr.Outcome:
        assert FleetRow("i", 1, 1, outcome.value).acked is outcome.ok
    assert not FleetRow("i", None, None, "unreadable").acked


def test_audit_text_shows_recorded_values() -> None:
    """`audit show` lines: head, each change as recorded (rejected as restart pending), errors."""
    record = {
        "ts": "2026-01-02T03:04:05.123+00:00",
        "config": "app",
        "version": 3,
        "outcome": "invalid",
        "trigger": "file",
        "actor": None,
        "changes": [{"path": "port", "old": 1, "new": 2, "action": "reject"}, "junk"],
        "errors": ["c.yaml:1:1: port: bad"],
    }
    assert audit_text(record).splitlines() == [
        "2026-01-02 03:04:05  app v3  INVALID  trigger=file",
        "    port: 1 -> 2  (restart pending)",
        "    ! c.yaml:1:1: port: bad",
    ]


def test_every_module_formats_changes_through_present() -> None:
    """No module but `_present` renders a change's old and new values itself, and the
    rewritten modules stay under 450 lines."""
    package = pathlib.Path(sr.__file__).parent
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "_present.py":
            assert "render(c.old" not in text and "render(self.old" not in text, path
        if path.name.startswith(("_audit", "_cli", "_present", "_result", "_log", "_explain")):
            assert text.count("\n") < 450, path


def test_audit_text_of_a_denied_call_has_no_version_and_values_as_json() -> None:
    """`audit show` of a refused admin call prints no `vNone`; change values are JSON, a
    secret `***` bare, as everywhere."""
    from selreload._present import audit_text

    denied = {"ts": "2026-01-01T00:00:00", "config": "demo", "version": None, "outcome": "denied"}
    denied |= {"trigger": "POST /reload", "actor": "127.0.0.1", "errors": ["missing bearer token"], "count": 3}
    text = audit_text(denied)
    assert "vNone" not in text and text.splitlines()[0].startswith("2026-01-01 00:00:00  demo  DENIED")
    assert "(x3)" in text
    change = {"path": "auth.token", "old": "***", "new": "***", "action": "reject"}
    applied = {
        "version": 2,
        "outcome": "applied",
        "changes": [change, {**change, "path": "a", "old": None, "new": True}],
    }
    lines = audit_text(applied).splitlines()
    assert lines[1:] == ["    auth.token: *** -> ***  (restart pending)", "    a: null -> true  (restart pending)"]

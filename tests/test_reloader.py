"""The Reloader end to end on real files: policies, outcomes, rollback, history, status."""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pytest

import selreload as sr

LEVELS = ["debug", "info", "warning", "error"]


@sr.config
class Logging:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(LEVELS))
    json: bool = False


@sr.config
class Auth:
    jwt_ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(hours=24))
    jwt_secret: str = sr.secret(default="")


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    logging: Logging = sr.field(factory=Logging)
    auth: Auth = sr.field(factory=Auth)
    feature_flags: dict[str, bool] = sr.hot(factory=dict)
    workers: int = sr.hot(default=4, validator=attrs.validators.ge(1))


BASE = "port: 8080\nlogging:\n  level: info\n"

Writer = Callable[[str], pathlib.Path]


def started(config_file: Writer, text: str = BASE, **kwargs: Any) -> sr.Reloader[App]:
    path = config_file(text)
    reloader = sr.Reloader(App, sources=[sr.YamlFile(path, watch=False)], **kwargs)
    return reloader


class Recorder:
    """An applier that logs its calls into a shared journal."""

    def __init__(self, name: str, journal: list[tuple[str, str, list[str]]], fail: bool = False) -> None:
        self.name = name
        self.journal = journal
        self.fail = fail
        self.fail_rollback = False

    def apply(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} refuses")
        self.journal.append(("apply", self.name, [c.path for c in changes]))

    def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.fail_rollback:
            raise RuntimeError(f"{self.name} cannot undo")
        self.journal.append(("rollback", self.name, [c.path for c in changes]))


def test_start_applies_initial_values_with_unset_old(config_file: Writer) -> None:
    """start() gives every applier its initial values, with `old` UNSET."""
    reloader = started(config_file)
    seen: list[sr.Change] = []
    reloader.on("logging", lambda changes, snap: seen.extend(changes))
    with reloader:
        assert reloader.snapshot is not None and reloader.snapshot.version == 1
        assert [c.path for c in seen] == ["logging.level", "logging.json"]
        assert all(c.old is sr.UNSET for c in seen)
        assert seen[0].new == "info"


def test_invalid_initial_config_fails_fast(config_file: Writer) -> None:
    """An invalid initial config raises ConfigError naming file:line:col and leaves nothing running."""
    reloader = started(config_file, "logging:\n  level: loud\n")
    with pytest.raises(sr.ConfigError) as err:
        reloader.start()
    assert "config.yaml:2:10: logging.level: must be one of debug, info, warning, error (got 'loud')" in str(err.value)
    assert reloader.state is sr.State.UNSTARTED


def test_hot_and_restart_only_in_one_edit(config_file: Writer) -> None:
    """Hot changes apply; restart-only ones are rejected and reported as restart pending."""
    reloader = started(config_file)
    with reloader:
        config_file("port: 9090\nlogging:\n  level: debug\n")
        result = reloader.reload()
        assert result.outcome is sr.Outcome.APPLIED
        assert [c.path for c in result.applied] == ["logging.level"]
        assert [c.path for c in result.rejected] == ["port"]
        assert reloader.current.logging.level == "debug"
        assert reloader.current.port == 8080
        assert reloader.status()["restart_pending"] == ["port"]
        assert reloader.snapshot is not None and reloader.snapshot.version == 2


def test_only_restart_only_changes_is_rejected(config_file: Writer) -> None:
    """An edit with only restart-only changes is REJECTED and changes nothing."""
    reloader = started(config_file)
    with reloader:
        before = reloader.current
        config_file("port: 9090\nlogging:\n  level: info\n")
        result = reloader.reload()
        assert result.outcome is sr.Outcome.REJECTED
        assert reloader.current is before
        assert result.version == 1
        assert reloader.status()["restart_pending"] == ["port"]
        # Reverting the source clears the pending restart.
        config_file(BASE)
        assert reloader.reload().outcome is sr.Outcome.UNCHANGED
        assert reloader.status()["restart_pending"] == []


def test_secret_is_restart_only_and_masked(config_file: Writer) -> None:
    """A secret change is rejected, and its value never shows in repr of result or plan."""
    reloader = started(config_file, BASE + "auth:\n  jwt_secret: s3cr3t-one\n")
    with reloader:
        config_file(BASE + "auth:\n  jwt_secret: s3cr3t-two\n")
        plan = reloader.plan()
        result = reloader.reload()
        assert result.outcome is sr.Outcome.REJECTED
        for text in (repr(result), str(plan), repr(plan), repr(reloader.current), str(reloader.status())):
            assert "s3cr3t" not in text
        assert "***" in str(plan)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_applier_failure_rolls_back_earlier_ones_in_reverse(config_file: Writer, n: int) -> None:
    """An applier raising at position k of n: the k-1 before it are rolled back, newest first."""
    for k in range(1, n + 1):
        journal: list[tuple[str, str, list[str]]] = []
        reloader = started(config_file)
        appliers = [Recorder(f"a{i}", journal, fail=False) for i in range(1, n + 1)]
        for a in appliers:
            reloader.on("logging.level", a)
        with reloader:
            before, snap_before = reloader.current, reloader.snapshot
            journal.clear()
            appliers[k - 1].fail = True
            config_file("logging:\n  level: debug\n")
            result = reloader.reload()
            assert result.outcome is sr.Outcome.ROLLED_BACK
            applied = [("apply", f"a{i}", ["logging.level"]) for i in range(1, k)]
            undone = [("rollback", f"a{i}", ["logging.level"]) for i in range(k - 1, 0, -1)]
            assert journal == applied + undone
            assert reloader.current is before
            assert reloader.snapshot is snap_before
            assert f"a{k} refuses" in str(result.errors[0])
            assert [c.path for c in result.attempted] == ["logging.level"]
            assert result.applied == ()


def test_function_applier_rolled_back_with_inverted_changes(config_file: Writer) -> None:
    """A function applier is undone by calling it again with old and new swapped."""
    calls: list[tuple[Any, Any]] = []
    reloader = started(config_file)

    @reloader.on("logging.level")
    def record(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        calls.extend((c.old, c.new) for c in changes)

    def boom(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if changes[0].old is not sr.UNSET:  # fine at start-up, fails on reload
            raise ValueError("no")

    reloader.on("logging", boom)
    with reloader:
        calls.clear()
        config_file("logging:\n  level: error\n")
        assert reloader.reload().outcome is sr.Outcome.ROLLED_BACK
        assert calls == [("info", "error"), ("error", "info")]


def test_rollback_that_raises_is_degraded(config_file: Writer) -> None:
    """When a rollback raises too, the outcome is DEGRADED and status() says unhealthy."""
    journal: list[tuple[str, str, list[str]]] = []
    reloader = started(config_file)
    first, second = Recorder("first", journal), Recorder("second", journal)
    reloader.on("logging.level", first)
    reloader.on("logging.level", second)
    with reloader:
        first.fail_rollback = True
        second.fail = True
        config_file("logging:\n  level: debug\n")
        result = reloader.reload()
        assert result.outcome is sr.Outcome.DEGRADED
        assert reloader.status()["healthy"] is False
        assert any("first cannot undo" in str(e) for e in result.errors)
        assert reloader.current.logging.level == "info"
        # A later successful reload makes it healthy again.
        first.fail_rollback = second.fail = False
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        assert reloader.status()["healthy"] is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("logging:\n  level: 5\n", "config.yaml:2:10: logging.level: expected a string, got int 5"),
        ("logging:\n  levle: debug\n", "config.yaml:2:3: logging.levle: unknown key; did you mean 'level'?"),
        ("logging:\n  json: 'false'\n", "config.yaml:2:9: logging.json: expected a bool, got str 'false'"),
        ("workers: 4.7\n", "config.yaml:1:10: workers: expected an int, got float 4.7"),
        ("workers: 0\n", "config.yaml:1:10: workers: must be >= 1: 0"),
        ("logging: debug\n", "config.yaml:1:10: logging: expected a mapping, got str"),
        ("auth:\n  jwt_ttl: soon\n", "auth.jwt_ttl: expected a duration like '15m', '24h', '1h30m' or seconds"),
    ],
)
def test_invalid_edits_change_nothing(config_file: Writer, text: str, expected: str) -> None:
    """Wrong type, unknown key, a string for a bool, out of range: INVALID with the place, nothing changed."""
    reloader = started(config_file)
    calls: list[Any] = []
    reloader.on("logging", lambda changes, snap: calls.append(changes))
    with reloader:
        before = reloader.current
        calls.clear()
        config_file(text)
        result = reloader.reload()
        assert result.outcome is sr.Outcome.INVALID
        assert expected in "\n".join(str(e) for e in result.errors)
        assert reloader.current is before
        assert calls == []
        assert reloader.status()["last_error"] is not None


def test_every_issue_is_listed_at_once(config_file: Writer) -> None:
    """Several problems in one file are all reported, each with its own path and line."""
    reloader = started(config_file)
    with reloader:
        config_file("logging:\n  level: loud\n  json: 1\nworkers: -1\nextra: 1\n")
        result = reloader.reload()
        lines = [str(e) for e in result.errors]
        assert len(lines) == 4, lines
        expected = ["config.yaml:2:10: logging.level", "config.yaml:3:9: logging.json", "config.yaml:4:10: workers"]
        expected.append("config.yaml:5:1: extra: unknown key")  # at the key
        # In file order, like a compiler.
        assert [e in line for e, line in zip(expected, lines, strict=True)] == [True] * 4, lines


def test_missing_required_key_is_reported() -> None:
    """A field without a default that the file omits is INVALID: required key is missing."""

    @sr.config
    class Needs:
        name: str = sr.hot()

    with pytest.raises(sr.ConfigError, match="name: required key is missing"):
        sr.Reloader(Needs, sources=[]).start()


def test_mapping_fields_diff_per_key(config_file: Writer) -> None:
    """feature_flags diffs per key: added, changed and removed keys are separate changes."""
    reloader = started(config_file, BASE + "feature_flags: {a: true, b: false}\n")
    with reloader:
        config_file(BASE + "feature_flags: {a: false, c: true}\n")
        result = reloader.reload()
        got = {(c.path, c.old, c.new) for c in result.applied}
        assert got == {
            ("feature_flags.a", True, False),
            ("feature_flags.c", sr.UNSET, True),
            ("feature_flags.b", False, sr.UNSET),
        }
        assert dict(reloader.current.feature_flags) == {"a": False, "c": True}


def test_glob_registration_gets_all_keys_in_one_call(config_file: Writer) -> None:
    """An applier registered at a glob gets every change under it in one call."""
    reloader = started(config_file)
    batches: list[list[str]] = []
    reloader.on("feature_flags.*", lambda changes, snap: batches.append(sorted(c.path for c in changes)))
    with reloader:
        config_file(BASE + "feature_flags: {x: true, y: true}\n")
        reloader.reload()
        assert batches == [["feature_flags.x", "feature_flags.y"]]


def test_unknown_registration_path_is_refused(config_file: Writer) -> None:
    """on() with a path that names no field raises with a suggestion."""
    reloader = started(config_file)
    with pytest.raises(ValueError, match="did you mean 'logging.level'"):
        reloader.on("logging.levle", lambda c, s: None)


def test_unchanged_bytes_are_unchanged(config_file: Writer) -> None:
    """A reload with identical input is UNCHANGED and keeps the version."""
    reloader = started(config_file)
    with reloader:
        assert reloader.reload().outcome is sr.Outcome.UNCHANGED
        config_file(BASE + "# only a comment\n")
        result = reloader.reload()
        assert result.outcome is sr.Outcome.UNCHANGED
        assert result.version == 1


def test_history_and_rollback(config_file: Writer) -> None:
    """rollback(version) goes through the transaction and makes an old config live as a new version."""
    journal: list[Any] = []
    reloader = started(config_file, history=3)
    reloader.on("logging.level", lambda changes, snap: journal.extend((c.old, c.new) for c in changes))
    with reloader:
        for level in ("debug", "warning", "error"):
            config_file(f"logging:\n  level: {level}\n")
            reloader.reload()
        assert [s.version for s in reloader.history] == [2, 3, 4]
        assert [s.config.logging.level for s in reloader.history] == ["debug", "warning", "error"]
        journal.clear()
        result = reloader.rollback(2, actor="ops")
        assert result.outcome is sr.Outcome.APPLIED
        assert result.trigger == "rollback"
        assert journal == [("error", "debug")]
        assert reloader.current.logging.level == "debug"
        assert reloader.snapshot is not None and reloader.snapshot.version == 5
        with pytest.raises(KeyError, match="not in history"):
            reloader.rollback(1)
        # The file still says "error", but a rollback holds until the sources change.
        assert reloader.reload().outcome is sr.Outcome.UNCHANGED
        assert reloader.current.logging.level == "debug"
        assert reloader.status()["rollback_to"] == 2
        config_file("logging:\n  level: warning\n")
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        assert reloader.current.logging.level == "warning"
        assert reloader.status()["rollback_to"] is None


def test_subscribers_called_after_commit(config_file: Writer) -> None:
    """subscribe() callbacks see the committed config and only for applied reloads."""
    reloader = started(config_file)
    seen: list[tuple[sr.Outcome, str]] = []
    reloader.subscribe(lambda result: seen.append((result.outcome, reloader.current.logging.level)))
    with reloader:
        config_file("logging:\n  level: error\n")
        reloader.reload()
        config_file("logging:\n  level: nope\n")
        reloader.reload()
        assert seen == [(sr.Outcome.APPLIED, "error")]


def test_strict_mode_rejects_everything(config_file: Writer) -> None:
    """In strict mode a restart-only change blocks the hot ones too."""
    reloader = started(config_file, strict=True)
    with reloader:
        config_file("port: 1\nlogging:\n  level: debug\n")
        result = reloader.reload()
        assert result.outcome is sr.Outcome.REJECTED
        assert reloader.current.logging.level == "info"
        assert {c.path for c in result.rejected} == {"port", "logging.level"}


def test_cross_field_rule_checked_on_effective_config(config_file: Writer) -> None:
    """The effective config (hot over live restart-only) is validated again: a rule that holds
    in the file but not with the live restart-only values makes the reload INVALID."""

    def under_max(instance: Any, attribute: Any, value: int) -> None:
        if value > instance.max_workers:
            raise ValueError(f"must be <= max_workers ({instance.max_workers})")

    @sr.config
    class Pool:
        max_workers: int = sr.restart_only(default=4)
        workers: int = sr.hot(default=2, validator=under_max)

    path = config_file("max_workers: 4\nworkers: 2\n")
    reloader = sr.Reloader(Pool, sources=[sr.YamlFile(path, watch=False)])
    with reloader:
        config_file("max_workers: 16\nworkers: 8\n")
        result = reloader.reload()
        assert result.outcome is sr.Outcome.INVALID
        assert "must be <= max_workers (4)" in str(result.errors[0])
        assert reloader.current.workers == 2


def test_plan_applies_nothing(config_file: Writer) -> None:
    """plan() shows each change's action without calling appliers or changing the version."""
    reloader = started(config_file)
    calls: list[Any] = []
    reloader.on("logging.level", lambda c, s: calls.append(c), name="level-applier")
    with reloader:
        calls.clear()
        config_file("port: 1\nlogging:\n  level: debug\n")
        plan = reloader.plan()
        assert plan.outcome is sr.Outcome.APPLIED
        table = plan.table()
        assert "apply via level-applier" in table
        assert "reject: restart required" in table
        assert calls == []
        assert reloader.snapshot is not None and reloader.snapshot.version == 1


def test_applier_registered_while_running_gets_live_values(config_file: Writer) -> None:
    """on() after start() hands the new applier the live values at once."""
    reloader = started(config_file)
    with reloader:
        seen: list[sr.Change] = []
        reloader.on("logging.level", lambda changes, snap: seen.extend(changes))
        assert [(c.old, c.new) for c in seen] == [(sr.UNSET, "info")]


def test_start_twice_is_an_error_and_restart_after_stop_works(config_file: Writer) -> None:
    """start() while running raises StateError; after stop() the Reloader can start again."""
    reloader = started(config_file)
    reloader.start()
    with pytest.raises(sr.StateError):
        reloader.start()
    reloader.stop()
    assert reloader.state is sr.State.STOPPED
    reloader.start()
    assert reloader.state is sr.State.RUNNING
    reloader.stop()


def test_config_is_immutable(config_file: Writer) -> None:
    """The live config and its mappings and lists cannot be modified in place."""
    reloader = started(config_file, BASE + "feature_flags: {a: true}\n")
    with reloader:
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            reloader.current.port = 1  # type: ignore[misc]
        with pytest.raises(TypeError, match="immutable"):
            reloader.current.feature_flags["a"] = False


def test_reload_from_inside_an_applier_is_refused(config_file: Writer) -> None:
    """reload() from inside a reload raises StateError, so the applier fails and all is undone."""
    reloader = started(config_file)
    errors: list[BaseException] = []

    def nested(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if changes[0].old is sr.UNSET:
            return
        try:
            reloader.reload()
        except sr.StateError as exc:
            errors.append(exc)
            raise

    reloader.on("logging.level", nested)
    with reloader:
        config_file("logging:\n  level: debug\n")
        result = reloader.reload()
        assert result.outcome is sr.Outcome.ROLLED_BACK
        assert "request_reload()" in str(errors[0])
        assert reloader.current.logging.level == "info"


def test_request_reload_from_a_subscriber_runs_after(config_file: Writer) -> None:
    """request_reload() from a subscriber is deferred: one more reload runs once this one ends."""
    reloader = started(config_file)
    outcomes: list[tuple[str, str]] = []

    def follow_up(result: sr.ReloadResult) -> None:
        outcomes.append((result.trigger, reloader.current.logging.level))
        if result.trigger == "manual":
            config_file("logging:\n  level: error\n")
            reloader.request_reload("follow-up")

    reloader.subscribe(follow_up)
    with reloader:
        config_file("logging:\n  level: debug\n")
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        assert outcomes == [("manual", "debug"), ("follow-up", "error")]


def test_current_before_start_says_so() -> None:
    """Before start(), `current` is falsy and any attribute of it raises StateError."""
    reloader = sr.Reloader(App, sources=[])
    assert not reloader.current
    with pytest.raises(sr.StateError, match="call start"):
        reloader.current.port  # noqa: B018


def test_rejected_leaf_keeps_its_live_origin(config_file: Writer) -> None:
    """After a reload with a rejected restart-only change, the snapshot's origin of that leaf
    is where its live value came from, not the line holding the refused new value."""
    reloader = started(config_file, "port: 8080\nlogging:\n  level: info\n")
    with reloader:
        config_file("logging:\n  level: debug\nport: 9090\n")
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        assert reloader.snapshot is not None
        origins = reloader.snapshot.origins
        assert origins["port"].endswith("config.yaml:1:7")  # the live 8080, from start
        assert origins["logging.level"].endswith("config.yaml:2:10")  # the new debug

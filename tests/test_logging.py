"""Logs through one logger per concern; the `selreload.reload` outcome lines: INFO per applied
reload with old -> new, WARNING per rejected restart-only change, ERROR for invalid/rolled
back, CRITICAL for degraded."""

from __future__ import annotations

import datetime
import logging
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from prometheus_client import CollectorRegistry

import selreload as sr


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning"]))
    ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(hours=1))
    password: str = sr.secret(default="", hot=True)
    token: str = sr.secret(default="")


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Save like a careful editor: temp file, then rename over."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Step:
    """An applier told to fail on apply or rollback (a fault we cannot cause otherwise)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fail_apply = False
        self.fail_rollback = False

    def apply(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.fail_apply:
            raise RuntimeError("disk full")

    def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.fail_rollback:
            raise RuntimeError("cannot undo")


class Logged:
    """A started Reloader on a real file; `reload(text)` returns the `selreload` records."""

    def __init__(self, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
        self.path = tmp_path / "config.yaml"
        self.caplog = caplog
        write_atomic(self.path, "level: info\npassword: pw-one\ntoken: tk-one\n")
        self.reloader = sr.Reloader(
            App, sources=[sr.YamlFile(self.path, watch=False)], registry=CollectorRegistry(), name="svc"
        )
        self.first, self.second = Step("first"), Step("second")
        self.reloader.on("level", self.first)
        self.reloader.on("ttl", self.second)
        caplog.set_level(logging.DEBUG, logger="selreload")
        self.reloader.start()

    def reload(self, text: str) -> list[tuple[int, str]]:
        self.caplog.clear()
        write_atomic(self.path, text)
        self.reloader.reload(trigger="file", actor="ops")
        return [(r.levelno, r.getMessage()) for r in self.caplog.records if r.name == "selreload.reload"]


@pytest.fixture
def logged(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> Logged:
    return Logged(tmp_path, caplog)


def test_start_logs_one_info_line(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    """start() logs one INFO line for the initial config."""
    Logged(tmp_path, caplog)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "selreload.reload"]
    assert lines == [(logging.INFO, "config 'svc' reload (start) applied v1: initial config")]


def test_applied_reload_is_one_info_line_with_old_and_new(logged: Logged) -> None:
    """An applied reload is exactly one INFO line naming each changed path old -> new,
    durations as text, secrets masked, with trigger and actor."""
    lines = logged.reload("level: debug\nttl: 15m\npassword: pw-two\ntoken: tk-one\n")
    assert lines == [
        (
            logging.INFO,
            "config 'svc' reload (file, by ops) applied v2: "
            'level "info" -> "debug"; ttl "1h" -> "15m"; password *** -> ***',
        )
    ]


def test_each_rejected_change_is_a_warning(logged: Logged) -> None:
    """Each rejected restart-only change is its own WARNING (secret masked); the hot
    change of the same reload is still the INFO line."""
    lines = logged.reload("level: debug\nport: 9090\npassword: pw-one\ntoken: tk-two\n")
    assert lines[0] == (logging.INFO, 'config \'svc\' reload (file, by ops) applied v2: level "info" -> "debug"')
    assert lines[1:] == [
        (logging.WARNING, "config 'svc': port needs a restart (restart pending): port 8080 -> 9090"),
        (logging.WARNING, "config 'svc': token needs a restart (restart pending): token *** -> ***"),
    ]


def test_only_rejected_changes_are_warnings(logged: Logged) -> None:
    """A reload with only restart-only changes logs WARNINGs and nothing above."""
    lines = logged.reload("level: info\nport: 9090\npassword: pw-one\ntoken: tk-one\n")
    assert [level for level, _ in lines] == [logging.WARNING, logging.WARNING]
    assert "rejected: only restart-only changes, v1 stays live" in lines[0][1]
    assert "port 8080 -> 9090" in lines[1][1]


def test_unchanged_is_debug_and_does_not_repeat_warnings(logged: Logged) -> None:
    """A repeated reload of a file with a pending restart-only change logs only DEBUG,
    naming what is still pending, instead of warning again."""
    logged.reload("level: info\nport: 9090\npassword: pw-one\ntoken: tk-one\n")
    lines = logged.reload("level: info\nport: 9090\npassword: pw-one\ntoken: tk-one\n")
    assert lines == [(logging.DEBUG, "config 'svc' reload (file, by ops) unchanged at v1 (restart pending: port)")]


def test_invalid_is_an_error_naming_the_place(logged: Logged) -> None:
    """An invalid file is one ERROR line with file:line:col, path and message."""
    lines = logged.reload("level: loud\npassword: pw-one\ntoken: tk-one\n")
    assert len(lines) == 1 and lines[0][0] == logging.ERROR
    assert "invalid, v1 stays live:" in lines[0][1]
    assert "config.yaml:1:8: level: must be one of debug, info, warning (got 'loud')" in lines[0][1]


def test_rolled_back_is_an_error(logged: Logged) -> None:
    """An applier failure is one ERROR line naming the applier, paths and exception."""
    logged.second.fail_apply = True
    lines = logged.reload("level: debug\nttl: 15m\npassword: pw-one\ntoken: tk-one\n")
    assert lines == [
        (
            logging.ERROR,
            "config 'svc' reload (file, by ops) rolled_back, v1 stays live: "
            "ttl: applier second failed on ttl: RuntimeError: disk full "
            '(tried, then rolled back: level "info" -> "debug"; ttl "1h" -> "15m")',
        )
    ]


def test_degraded_is_critical(logged: Logged) -> None:
    """A failed rollback is one CRITICAL line with both failures."""
    logged.second.fail_apply = True
    logged.first.fail_rollback = True
    lines = logged.reload("level: debug\nttl: 15m\npassword: pw-one\ntoken: tk-one\n")
    assert len(lines) == 1 and lines[0][0] == logging.CRITICAL
    assert "degraded, v1 stays live" in lines[0][1]
    assert "applier second failed on ttl: RuntimeError: disk full" in lines[0][1]
    assert "rollback of first failed: RuntimeError: cannot undo" in lines[0][1]


def test_one_logger_per_concern() -> None:
    """Each concern logs under its own child of `selreload`, the names docs/observability.md lists."""
    import importlib

    expected = {
        "selreload._log": "selreload.reload",
        "selreload._trigger": "selreload.reload",
        "selreload._watch": "selreload.watch",
        "selreload._signals": "selreload.signal",
        "selreload._etcd_client": "selreload.etcd",
        "selreload.sources._etcd": "selreload.etcd",
        "selreload.sources._etcd_watch": "selreload.etcd",
        "selreload.asgi": "selreload.http",
        "selreload._record": "selreload.record",
        "selreload.demo._app": "selreload.demo",
    }
    got = {module: importlib.import_module(module).log.name for module in expected}
    assert got == expected


class Counted:
    """A leaf value that records each time something renders it (repr, str, format)."""

    def __init__(self, n: int, seen: list[int]) -> None:
        self.n = n
        self.seen = seen

    def __repr__(self) -> str:
        self.seen.append(self.n)
        return f"<value {self.n}>"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)


def _counted_changes(count: int, seen: list[int], policy: sr.Policy, start: int) -> tuple[sr.Change, ...]:
    return tuple(sr.Change(f"s.f{i}", Counted(i, seen), Counted(i, seen), policy) for i in range(start, start + count))


def _results(seen: list[int]) -> dict[str, sr.ReloadResult]:
    hot = _counted_changes(200, seen, sr.Policy.HOT, 0)
    restart = _counted_changes(200, seen, sr.Policy.RESTART_ONLY, 1000)
    return {
        "applied": sr.ReloadResult(sr.Outcome.APPLIED, 2, applied=hot, rejected=restart, previous_version=1),
        "rejected": sr.ReloadResult(sr.Outcome.REJECTED, 1, rejected=restart, previous_version=1),
        "unchanged": sr.ReloadResult(sr.Outcome.UNCHANGED, 1, rejected=restart, previous_version=1),
        "rolled back": sr.ReloadResult(sr.Outcome.ROLLED_BACK, 1, attempted=hot, previous_version=1),
    }


@pytest.mark.parametrize("outcome", ["applied", "rejected", "unchanged", "rolled back"])
def test_no_change_is_formatted_when_its_level_is_off(outcome: str) -> None:
    """With the `selreload` logger above a result's level, logging it renders no value at all."""
    from selreload._log import log_result

    seen: list[int] = []
    result = _results(seen)[outcome]
    logger = logging.getLogger("selreload")
    logger.setLevel(logging.CRITICAL)
    try:
        log_result(result, name="app")
    finally:
        logger.setLevel(logging.NOTSET)
    assert seen == []


@pytest.mark.parametrize("outcome", ["applied", "rejected", "unchanged", "rolled back"])
def test_a_logged_result_formats_at_most_the_capped_changes(outcome: str, caplog: pytest.LogCaptureFixture) -> None:
    """With every level on, a result of 200 applied and 200 rejected changes renders the
    values of at most 20 changes per list and names at most 20 paths per line."""
    from selreload._log import _LINE_CHANGES, log_result

    seen: list[int] = []
    result = _results(seen)[outcome]
    with caplog.at_level(logging.DEBUG, logger="selreload"):
        log_result(result, name="app")
    assert caplog.records, "the result was logged"
    for changes in (result.applied, result.rejected, result.attempted):
        assert len({c.old.n for c in changes} & set(seen)) <= _LINE_CHANGES
    assert len(seen) <= 2 * 2 * _LINE_CHANGES  # old and new, of at most 20 changes per list
    for record in caplog.records:
        assert record.getMessage().count("s.f") <= _LINE_CHANGES + 1, record.getMessage()[:200]

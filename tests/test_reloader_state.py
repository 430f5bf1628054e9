"""Any sequence of writes, faults, reloads and rollbacks leaves the Reloader consistent.

A hypothesis state machine drives a real Reloader on a real file (unwatched: the steps
trigger reloads themselves, through `reload()` and through `request_reload()`, the path
watchers use) and checks after every step what a user relies on.
"""

from __future__ import annotations

import pathlib
import tempfile
from collections.abc import Sequence
from typing import Any

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import selreload as sr
from selreload._diff import Digester
from selreload._schema import Schema
from tests.conftest import write_atomic

LEVELS = ["debug", "info", "warning", "error"]


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    level: str = sr.hot(default="info", validator=attrs.validators.in_(LEVELS))
    workers: int = sr.hot(default=4, validator=attrs.validators.ge(1))
    flags: dict[str, bool] = sr.hot(factory=dict)


SCHEMA = Schema(App)


class Level:
    """A side effect the live config must always agree with (unless a rollback failed)."""

    name = "level"

    def __init__(self) -> None:
        self.value: str | None = None
        self.fail = False

    def apply(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.fail:
            raise RuntimeError("applier refuses")
        self.value = changes[-1].new

    def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        self.value = changes[-1].old


class Workers:
    """Runs first; its rollback can be made to fail, which makes a failed reload DEGRADED."""

    name = "workers"

    def __init__(self) -> None:
        self.value: int | None = None
        self.fail_rollback = False

    def apply(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        self.value = changes[-1].new

    def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.fail_rollback:
            raise RuntimeError("cannot undo")
        self.value = changes[-1].old


def document(port: int, level: str, workers: int, flags: dict[str, bool]) -> str:
    lines = [f"port: {port}", f"level: {level}", f"workers: {workers}"]
    if flags:
        lines.append("flags:")
        lines.extend(f"  {k}: {str(v).lower()}" for k, v in flags.items())
    return "\n".join(lines) + "\n"


class ReloaderMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.dir = tempfile.TemporaryDirectory()
        self.path = pathlib.Path(self.dir.name) / "config.yaml"
        write_atomic(self.path, document(8080, "info", 4, {}))
        self.file_port: int | None = 8080  # the port the file holds, None while it is invalid
        self.reloaded_port: int | None = 8080  # ... as of the last reload that read it
        self.applier = Level()
        self.workers = Workers()
        self.healthy = True
        self.degraded_once = False  # a side effect may stay half-applied until a restart
        self.reloader = sr.Reloader(
            App, sources=[sr.YamlFile(self.path, watch=False)], registry=sr_registry(), name="machine"
        )
        self.reloader.on("workers", self.workers)
        self.reloader.on("level", self.applier)
        self.reloader.start()
        self.version = 1
        self.last: sr.ReloadResult | None = None

    def teardown(self) -> None:
        if hasattr(self, "reloader"):
            self.reloader.stop()
            self.dir.cleanup()

    @rule(
        port=st.sampled_from([8080, 9000]),
        level=st.sampled_from(LEVELS),
        workers=st.integers(1, 3),
        flags=st.dictionaries(st.sampled_from(["a", "b"]), st.booleans(), max_size=2),
    )
    def write_valid(self, port: int, level: str, workers: int, flags: dict[str, bool]) -> None:
        write_atomic(self.path, document(port, level, workers, flags))
        self.file_port = port

    @rule(bad=st.sampled_from(["level: loud\n", "workers: 0\n", "port: [\n", "nope: 1\n", ""]))
    def write_invalid(self, bad: str) -> None:
        write_atomic(self.path, bad)
        self.file_port = None

    @rule(fail=st.booleans(), fail_rollback=st.booleans())
    def appliers_fail(self, fail: bool, fail_rollback: bool) -> None:
        self.applier.fail = fail
        self.workers.fail_rollback = fail_rollback

    def _reloaded(self) -> None:
        self.reloaded_port = self.file_port if self.file_port is not None else self.reloaded_port
        self._outcome()

    def _outcome(self) -> None:
        outcome = self.reloader.status()["last_outcome"]
        if outcome == "degraded":
            self.healthy = False
            self.degraded_once = True
        elif outcome == "applied":
            self.healthy = True

    @rule()
    def reload(self) -> None:
        self.last = self.reloader.reload()
        self._reloaded()

    @rule()
    def request_reload(self) -> None:
        self.reloader.request_reload("file")
        self.last = None
        self._reloaded()

    @precondition(lambda self: len(self.reloader.history) > 1)
    @rule(data=st.data())
    def rollback(self, data: st.DataObject) -> None:
        version = data.draw(st.sampled_from([s.version for s in self.reloader.history]))
        self.last = self.reloader.rollback(version)
        self._outcome()  # a rollback reads no source

    @invariant()
    def current_is_valid_and_matches_its_snapshot(self) -> None:
        r = self.reloader
        attrs.validate(r.current)
        assert r.snapshot is not None
        assert r.snapshot.config is r.current
        # From scratch: a new digester reuses nothing the reloader's own one remembered.
        assert r.snapshot.digest == Digester(SCHEMA)(r.current)

    @invariant()
    def version_never_goes_down(self) -> None:
        assert self.reloader.snapshot is not None
        assert self.reloader.snapshot.version >= self.version
        self.version = self.reloader.snapshot.version

    @invariant()
    def status_agrees_with_snapshot_and_last_result(self) -> None:
        r = self.reloader
        status = r.status()
        assert r.snapshot is not None
        assert status["version"] == r.snapshot.version
        assert status["digest"] == r.snapshot.digest
        if self.last is not None:
            assert status["last_outcome"] == self.last.outcome.value
            assert self.last.version == r.snapshot.version
        assert status["healthy"] is self.healthy

    @invariant()
    def side_effects_match_the_live_config(self) -> None:
        """All or nothing: each applier holds the live value, except the one whose
        rollback failed in a DEGRADED reload (the service needs a restart)."""
        assert self.applier.value == self.reloader.current.level
        if not self.degraded_once:
            assert self.workers.value == self.reloader.current.workers

    @invariant()
    def restart_pending_is_the_restart_only_difference_with_the_sources(self) -> None:
        live_port = self.reloader.current.port
        expected = ["port"] if self.reloaded_port is not None and self.reloaded_port != live_port else []
        assert self.reloader.status()["restart_pending"] == expected
        assert [c.path for c in self.reloader.restart_pending] == expected


def sr_registry() -> Any:
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


ReloaderMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestReloaderMachine = ReloaderMachine.TestCase

"""One error boundary: whatever a source or the structurer raises, every path ends in a
defined outcome, and the same bad bytes stay INVALID."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._cli import main as cli_main
from tests.conftest import write_atomic


@sr.config
class App:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info"]))
    port: int = sr.restart_only(default=8080)


class Exploding:
    """A source that raises a non-ConfigError (as a buggy parser would) while armed,
    with a message quoting its input."""

    def __init__(self, path: pathlib.Path) -> None:
        self.inner = sr.YamlFile(path, watch=False)
        self.armed: type[BaseException] | None = None

    @property
    def name(self) -> str:
        return self.inner.name

    def load(self) -> sr.typing.Layer:
        if self.armed is not None:
            raise self.armed("parser choked on 'hunter2-marker'")
        return self.inner.load()

    def watch(self, notify: Callable[[str], None]) -> None:
        return None


def started(tmp_path: pathlib.Path) -> tuple[sr.Reloader[App], Exploding, CollectorRegistry]:
    path = tmp_path / "c.yaml"
    write_atomic(path, "level: info\n")
    source = Exploding(path)
    registry = CollectorRegistry()
    r = sr.Reloader(App, sources=[source], registry=registry, name="b")
    r.start()
    return r, source, registry


@pytest.mark.parametrize("exc", [RuntimeError, KeyError, IndexError, OverflowError, RecursionError, MemoryError])
def test_anything_a_source_raises_is_an_invalid_result(tmp_path: pathlib.Path, exc: type[Exception]) -> None:
    """reload() and plan() return INVALID naming the source and the exception's type, never
    its text; the live config stays; status, metrics and the error agree."""
    r, source, registry = started(tmp_path)
    source.armed = exc
    result = r.reload()
    assert result.outcome is sr.Outcome.INVALID
    (issue,) = result.errors
    assert issue.origin == source.name and exc.__name__ in issue.message
    assert "hunter2-marker" not in str(result) and "hunter2-marker" not in str(r.status())
    assert r.current.level == "info" and r.status()["last_outcome"] == "invalid"
    assert registry.get_sample_value("selreload_reloads_total", {"config": "b", "outcome": "invalid"}) == 1.0
    plan = r.plan()
    assert plan.outcome is sr.Outcome.INVALID and "hunter2-marker" not in str(plan.errors)


def test_the_same_invalid_bytes_stay_invalid(tmp_path: pathlib.Path) -> None:
    """Reloading an unchanged INVALID file answers INVALID again with the errors (never
    UNCHANGED), and the last-success timestamp does not move."""
    r, _, registry = started(tmp_path)
    write_atomic(tmp_path / "c.yaml", "level: loud\n")
    first = r.reload()
    assert first.outcome is sr.Outcome.INVALID and not first.ok
    stamp = registry.get_sample_value("selreload_last_success_timestamp_seconds", {"config": "b"})
    time.sleep(0.01)
    for _ in range(3):
        again = r.reload()
        assert again.outcome is sr.Outcome.INVALID and not again.ok
        assert again.errors == first.errors
        assert r.status()["last_outcome"] == "invalid" and r.status()["last_error"]
    assert registry.get_sample_value("selreload_last_success_timestamp_seconds", {"config": "b"}) == stamp
    # A real fix is applied at once.
    write_atomic(tmp_path / "c.yaml", "level: debug\n")
    assert r.reload().outcome is sr.Outcome.APPLIED


def test_a_request_from_a_watcher_thread_ends_in_a_defined_outcome(tmp_path: pathlib.Path) -> None:
    """The path watchers and SIGHUP take (request_reload) records an INVALID result for a
    source that raises, and the next good change is applied."""
    r, source, _ = started(tmp_path)
    seen: list[str] = []
    r._pipeline.record.recorders.append(_Seen(seen))
    source.armed = RuntimeError
    r.request_reload("file")
    assert seen == ["invalid"]
    source.armed = None
    write_atomic(tmp_path / "c.yaml", "level: debug\n")
    r.request_reload("file")
    assert seen == ["invalid", "applied"] and r.current.level == "debug"


class _Seen:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    def record(self, result: sr.ReloadResult, live: Any) -> None:
        self.seen.append(result.outcome.value)


def test_cli_check_never_prints_a_traceback(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`selreload check` on a hostile file answers with issues and exit 1."""
    import io

    (tmp_path / "schema_mod.py").write_text(
        "import selreload as sr\n@sr.config\nclass C:\n    n: int = sr.hot(default=1)\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("n: !!bool maybe\n")
    out, err = io.StringIO(), io.StringIO()
    import os
    import sys

    old = os.getcwd()
    os.chdir(tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        code = cli_main(["check", "--schema", "schema_mod:C", str(bad)], out=out, err=err)
    finally:
        os.chdir(old)
        sys.path.remove(str(tmp_path))
    assert code == 1
    assert "Traceback" not in err.getvalue() and "bad.yaml" in err.getvalue()

"""The quickstart example (what `make demo` ran first) does what it prints."""

from __future__ import annotations

import logging
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "examples"))

import quickstart


def test_quickstart_runs(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Hot edits go live, the port waits for a restart, the broken edit changes nothing."""
    root_level = logging.getLogger().level
    try:
        reloader = quickstart.main(tmp_path)
    finally:
        logging.getLogger().setLevel(root_level)
    out = capsys.readouterr().out
    assert "edit 1 (hot + restart-only): APPLIED" in out
    assert "rejected  Change('port', 8080 -> 9090, restart_only)  -> restart pending" in out
    assert "edit 2 (broken): INVALID" in out
    assert "config.yaml:2:10: logging.level: must be one of debug, info, warning, error (got 'verbose')" in out
    assert "change-me" not in out
    assert reloader.current.logging.level == "debug"
    assert reloader.current.port == 8080

"""File sources warn about (or, with `strict_modes`, refuse) configs any local user can change."""

from __future__ import annotations

import logging
import os
import pathlib

import pytest

import selreload as sr

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX modes")


@sr.config
class App:
    level: str = sr.hot(default="info")


def config_in(directory: pathlib.Path, *, file_mode: int = 0o600, dir_mode: int = 0o700) -> pathlib.Path:
    directory.mkdir()
    path = directory / "config.yaml"
    path.write_text("level: info\n")
    os.chmod(path, file_mode)
    os.chmod(directory, dir_mode)
    return path


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "selreload.source" and r.levelno == logging.WARNING]


@pytest.mark.parametrize(("file_mode", "dir_mode"), [(0o600, 0o700), (0o644, 0o755), (0o664, 0o775), (0o644, 0o1777)])
def test_safe_modes_start_quietly(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, file_mode: int, dir_mode: int
) -> None:
    """Owner-only, group-writable and a sticky world-writable directory (like /tmp): no warning,
    and `strict_modes` starts too."""
    path = config_in(tmp_path / "etc", file_mode=file_mode, dir_mode=dir_mode)
    with (
        caplog.at_level(logging.WARNING),
        sr.Reloader(App, sources=[sr.YamlFile(path, watch=False, strict_modes=True)]),
    ):
        pass
    assert warnings_of(caplog) == []


def test_world_writable_file_warns_at_start_once(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    """A 0666 file: start() loads it and logs one WARNING naming the path and mode; later
    reloads with the same finding do not repeat it; fixed then broken again, it warns again."""
    path = config_in(tmp_path / "etc", file_mode=0o666)
    reloader = sr.Reloader(App, sources=[sr.YamlFile(path, watch=False)])
    with caplog.at_level(logging.WARNING), reloader:
        assert reloader.current.level == "info"
        assert warnings_of(caplog) == [
            f"{path}: file {path} is world-writable (mode 0666): any local user can change this config"
        ]
        reloader.reload()
        assert len(warnings_of(caplog)) == 1
        os.chmod(path, 0o644)
        reloader.reload()
        os.chmod(path, 0o646)
        reloader.reload()
        assert len(warnings_of(caplog)) == 2 and "(mode 0646)" in warnings_of(caplog)[-1]


def test_world_writable_directory_warns(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture) -> None:
    """A 0777 directory without the sticky bit lets anyone rename a file over the config: warned."""
    path = config_in(tmp_path / "etc", dir_mode=0o777)
    with caplog.at_level(logging.WARNING), sr.Reloader(App, sources=[sr.YamlFile(path, watch=False)]):
        pass
    [message] = warnings_of(caplog)
    assert f"directory {path.parent} is world-writable (mode 0777)" in message


def test_strict_modes_refuses_at_start(tmp_path: pathlib.Path) -> None:
    """`strict_modes=True`: a 0666 file in a 0777 directory fails start() with a ConfigError
    naming both, and nothing is live."""
    path = config_in(tmp_path / "etc", file_mode=0o666, dir_mode=0o777)
    reloader = sr.Reloader(App, sources=[sr.YamlFile(path, watch=False, strict_modes=True)])
    with pytest.raises(sr.ConfigError) as caught:
        reloader.start()
    text = str(caught.value)
    assert f"file {path} is world-writable (mode 0666)" in text
    assert f"directory {path.parent} is world-writable (mode 0777)" in text
    assert "strict_modes" in text
    assert reloader.snapshot is None


def test_strict_modes_refuses_a_reload_and_keeps_the_live_config(tmp_path: pathlib.Path) -> None:
    """Made world-writable while running, a strict source's next reload is INVALID naming
    the mode; the live config stays, and the reload after the fix applies."""
    path = config_in(tmp_path / "etc")
    reloader = sr.Reloader(App, sources=[sr.YamlFile(path, watch=False, strict_modes=True)])
    with reloader:
        path.write_text("level: debug\n")
        os.chmod(path, 0o666)
        result = reloader.reload()
        assert result.outcome is sr.Outcome.INVALID
        assert "world-writable (mode 0666)" in str(result.errors[0])
        assert reloader.current.level == "info"
        os.chmod(path, 0o600)
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        assert reloader.current.level == "debug"


def test_json_and_toml_files_check_too(tmp_path: pathlib.Path) -> None:
    """Every file source shares the check (it lives in FileSource)."""
    directory = tmp_path / "etc"
    directory.mkdir()
    for source, name, text in ((sr.JsonFile, "c.json", '{"level": "info"}'), (sr.TomlFile, "c.toml", 'level = "info"')):
        path = directory / name
        path.write_text(text)
        os.chmod(path, 0o666)
        with pytest.raises(sr.ConfigError, match="world-writable"):
            sr.Reloader(App, sources=[source(path, watch=False, strict_modes=True)]).start()

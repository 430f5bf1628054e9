"""File watching: every way a config file really changes reloads once, with the final content."""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import selreload as sr
from selreload import _watch
from selreload._watch import TRIGGER, watch_path

SETTLE = 0.3  # after the expected reload, how long a second one has to show up
TIMEOUT = 10.0


@sr.config
class Cfg:
    a: int = sr.hot(default=0)
    b: int = sr.hot(default=0)
    note: str = sr.hot(default="")


def doc(n: int, note: str = "") -> str:
    return f"a: {n}\nb: {n}\nnote: '{note}'\n"


@pytest.fixture(autouse=True, params=["inotify", "watchdog"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on both ways of watching: inotify read directly (Linux), and the
    portable watchdog observer (what other platforms use)."""
    if request.param == "inotify" and not _watch._fast_path:
        pytest.skip("inotify is Linux only")
    monkeypatch.setattr(_watch, "_fast_path", request.param == "inotify")
    return str(request.param)


def wait_for(pred: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.002)
    return pred()


class Recorder:
    """An audit sink that keeps every recorded attempt (APPLIED, INVALID, ...)."""

    def __init__(self) -> None:
        self.results: list[sr.ReloadResult] = []

    def record(self, result: sr.ReloadResult, **_: Any) -> None:
        self.results.append(result)

    def outcomes(self) -> list[str]:
        return [r.outcome.value for r in self.results if r.trigger != "start"]

    def applied(self) -> list[sr.ReloadResult]:
        return [r for r in self.results if r.outcome is sr.Outcome.APPLIED and r.trigger != "start"]


class Rig:
    """A real Reloader on a real YamlFile watched by the real observer."""

    def __init__(self, path: pathlib.Path, **source: Any) -> None:
        self.path = path
        self.audit = Recorder()
        self.reloader: sr.Reloader[Cfg] = sr.Reloader(
            Cfg, sources=[sr.YamlFile(path, **source)], audit=self.audit, registry=_registry()
        )

    def expect_one_reload(self, a: int, note: str = "") -> None:
        """Exactly one APPLIED reload arrives, with `a`/`note` live, and no other attempt."""
        assert wait_for(lambda: self.reloader.current.a == a), f"never reloaded: {self.audit.outcomes()}"
        time.sleep(SETTLE)
        assert self.audit.outcomes() == ["applied"], self.audit.outcomes()
        assert self.reloader.current == Cfg(a=a, b=a, note=note)


def _registry() -> Any:
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


@pytest.fixture
def rig(tmp_path: pathlib.Path) -> Iterator[Rig]:
    path = tmp_path / "config.yaml"
    path.write_text(doc(1))
    rig = Rig(path)
    with rig.reloader:
        yield rig


def test_in_place_write_reloads_once(rig: Rig) -> None:
    """An in-place rewrite (open 'w', write, close) reloads once, at close."""
    with open(rig.path, "w") as fh:
        fh.write(doc(2))
    rig.expect_one_reload(2)


def test_write_then_rename_reloads_once(rig: Rig) -> None:
    """Write to a temp file then os.replace onto the name (most editors) reloads once."""
    tmp = rig.path.with_name(".config.yaml.swx")
    tmp.write_text(doc(2))
    os.replace(tmp, rig.path)
    rig.expect_one_reload(2)


def test_vim_style_save_reloads_once(rig: Rig) -> None:
    """vim: probe file, rename the original away, write a new file, delete the backup."""
    probe = rig.path.with_name("4913")
    probe.write_text("")
    probe.unlink()
    backup = rig.path.with_name("config.yaml~")
    os.rename(rig.path, backup)
    with open(rig.path, "w") as fh:
        fh.write(doc(2))
        fh.flush()
        os.fsync(fh.fileno())
    backup.unlink()
    rig.expect_one_reload(2)


def test_chunked_write_reloads_once_with_the_whole_file(rig: Rig) -> None:
    """A file written in chunks with pauses shorter than the quiet window reloads once, whole."""
    text = doc(2, note="x" * 200)
    with open(rig.path, "w") as fh:
        for i in range(0, len(text), 40):
            fh.write(text[i : i + 40])
            fh.flush()
            os.fsync(fh.fileno())
            time.sleep(0.005)
    rig.expect_one_reload(2, note="x" * 200)


def test_open_unclosed_write_does_not_reload_until_close(rig: Rig) -> None:
    """A write still open (modified, not closed) triggers nothing; the close does."""
    with open(rig.path, "w") as fh:
        fh.write("a: 2\n")  # half of the document: reading it now would apply b: 0
        fh.flush()
        time.sleep(SETTLE)
        assert rig.audit.outcomes() == []
        fh.write("b: 2\nnote: ''\n")
    rig.expect_one_reload(2)


def test_same_bytes_saved_again_reload_nothing(rig: Rig) -> None:
    """A save that changes no byte records nothing (UNCHANGED), however it is written."""
    tmp = rig.path.with_name("tmp")
    tmp.write_text(doc(1))
    os.replace(tmp, rig.path)
    assert wait_for(lambda: rig.reloader.status()["last_outcome"] == "unchanged")
    rig.path.write_text(doc(1))
    time.sleep(SETTLE)
    assert rig.audit.outcomes() == []
    assert rig.reloader.snapshot is not None and rig.reloader.snapshot.version == 1


def test_configmap_data_symlink_swap_reloads_once(tmp_path: pathlib.Path) -> None:
    """A Kubernetes ConfigMap update (..data_tmp -> new dir, renamed onto ..data) reloads once."""

    def publish(version: int, text: str) -> None:
        stamp = tmp_path / f"..2026_01_0{version}"
        stamp.mkdir()
        (stamp / "config.yaml").write_text(text)
        os.symlink(stamp.name, tmp_path / "..data_tmp")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")

    publish(1, doc(1))
    os.symlink("..data/config.yaml", tmp_path / "config.yaml")
    rig = Rig(tmp_path / "config.yaml")
    with rig.reloader:
        publish(2, doc(2))
        shutil.rmtree(tmp_path / "..2026_01_01")  # kubelet deletes the old one afterwards
        rig.expect_one_reload(2)


def test_deleted_then_recreated_keeps_live_config_and_warns(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """A deleted file keeps the live config and logs a warning; it reloads when it comes back."""
    caplog.set_level(logging.WARNING, logger="selreload")
    rig.path.unlink()
    assert wait_for(lambda: any("missing" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records))
    assert wait_for(lambda: rig.audit.outcomes() == ["invalid"])  # "required config file is missing"
    assert rig.reloader.current == Cfg(a=1, b=1)
    rig.path.write_text(doc(2))
    assert wait_for(lambda: rig.reloader.current.a == 2)
    time.sleep(SETTLE)
    assert rig.audit.outcomes() == ["invalid", "applied"]
    assert rig.reloader.current == Cfg(a=2, b=2)


def test_optional_file_deleted_becomes_an_absent_layer(tmp_path: pathlib.Path) -> None:
    """Deleting an optional file reloads to what the other layers say (here: defaults)."""
    path = tmp_path / "config.yaml"
    path.write_text(doc(3))
    rig = Rig(path, required=False)
    with rig.reloader:
        path.unlink()
        assert wait_for(lambda: rig.reloader.current == Cfg())
        time.sleep(SETTLE)
        assert rig.audit.outcomes() == ["applied"]


def test_directory_replaced_is_watched_again(tmp_path: pathlib.Path) -> None:
    """The config directory renamed away and a new one renamed in reloads once, and the new
    directory is watched from then on."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(doc(1))
    rig = Rig(conf / "config.yaml")
    with rig.reloader:
        new = tmp_path / "conf.new"
        new.mkdir()
        (new / "config.yaml").write_text(doc(2))
        os.rename(conf, tmp_path / "conf.old")
        os.rename(new, conf)
        shutil.rmtree(tmp_path / "conf.old")
        rig.expect_one_reload(2)
        (conf / "config.yaml").write_text(doc(3))  # an edit in the new directory
        assert wait_for(lambda: rig.reloader.current.a == 3)
        time.sleep(SETTLE)
        assert rig.audit.outcomes() == ["applied", "applied"]


def test_directory_recreated_in_place_is_watched_again(tmp_path: pathlib.Path) -> None:
    """The config directory deleted, made again (mkdir) and the file written reloads once."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(doc(1))
    rig = Rig(conf / "config.yaml", required=False)
    with rig.reloader:
        shutil.rmtree(conf)
        conf.mkdir()
        (conf / "config.yaml").write_text(doc(2))
        assert wait_for(lambda: rig.reloader.current.a == 2)
        time.sleep(SETTLE)
        # Deleting an optional file may show as one reload to the defaults first.
        assert rig.audit.outcomes()[-1:] == ["applied"] and len(rig.audit.outcomes()) <= 2
        (conf / "config.yaml").write_text(doc(3))
        assert wait_for(lambda: rig.reloader.current.a == 3)


def test_poll_mode_reloads_once(tmp_path: pathlib.Path) -> None:
    """The polling fallback (NFS) sees an atomic replace and reloads once."""
    path = tmp_path / "config.yaml"
    path.write_text(doc(1))
    calls: list[str] = []
    watcher = watch_path(path, calls.append, mode="poll", poll_interval=0.05)
    try:
        tmp = tmp_path / "tmp"
        tmp.write_text(doc(2))
        os.replace(tmp, path)
        assert wait_for(lambda: calls == [TRIGGER])
        time.sleep(SETTLE)
        assert calls == [TRIGGER]
    finally:
        watcher.stop()


def test_reads_of_the_file_trigger_nothing(tmp_path: pathlib.Path) -> None:
    """Opening and reading the file (what a reload does) never notifies: no feedback loop."""
    path = tmp_path / "config.yaml"
    path.write_text(doc(1))
    calls: list[str] = []
    watcher = watch_path(path, calls.append)
    try:
        for _ in range(20):
            path.read_bytes()
        (tmp_path / "other.txt").write_text("unrelated")
        time.sleep(SETTLE)
        assert calls == []
    finally:
        watcher.stop()


def test_events_during_a_slow_notify_fold_into_one_trailing_call(tmp_path: pathlib.Path) -> None:
    """The first save notifies at once; saves while that call runs become exactly one more."""
    path = tmp_path / "config.yaml"
    path.write_text(doc(1))
    started, release = threading.Event(), threading.Event()
    calls: list[float] = []

    def slow(trigger: str) -> None:
        calls.append(time.monotonic())
        started.set()
        release.wait(TIMEOUT)

    watcher = watch_path(path, slow, quiet=0.02)
    try:
        path.write_text(doc(2))
        assert started.wait(TIMEOUT)
        for n in range(3, 8):
            path.write_text(doc(n))
        time.sleep(0.05)
        release.set()
        assert wait_for(lambda: len(calls) == 2)
        time.sleep(SETTLE)
        assert len(calls) == 2
    finally:
        release.set()
        watcher.stop()


def test_file_in_a_directory_that_does_not_exist_yet(tmp_path: pathlib.Path) -> None:
    """Watching a file whose directory appears later notices the file once it is there."""
    path = tmp_path / "later" / "config.yaml"
    calls: list[str] = []
    watcher = watch_path(path, calls.append)
    try:
        staging = tmp_path / "staging"
        staging.mkdir()
        (staging / "config.yaml").write_text(doc(1))
        os.rename(staging, path.parent)
        assert wait_for(lambda: TRIGGER in calls)
    finally:
        watcher.stop()


def test_stop_joins_every_thread_over_100_cycles(tmp_path: pathlib.Path) -> None:
    """100 start/stop cycles of watches and of a watching Reloader leave no thread behind."""
    path = tmp_path / "config.yaml"
    path.write_text(doc(1))
    before = set(threading.enumerate())
    for _ in range(100):
        watch_path(path, lambda trigger: None).stop()
    reloader = sr.Reloader(Cfg, sources=[sr.YamlFile(path)], registry=_registry())
    for _ in range(100):
        reloader.start()
        reloader.stop()
    assert wait_for(lambda: set(threading.enumerate()) <= before, timeout=5), set(threading.enumerate()) - before


def test_stop_from_inside_notify_does_not_deadlock(tmp_path: pathlib.Path) -> None:
    """A watch stopped by its own notify call (an applier stopping the reloader) ends cleanly."""
    path = tmp_path / "config.yaml"
    path.write_text(doc(1))
    done = threading.Event()
    holder: list[Any] = []

    def stop_self(trigger: str) -> None:
        holder[0].stop()
        done.set()

    holder.append(watch_path(path, stop_self))
    path.write_text(doc(2))
    assert done.wait(TIMEOUT)
    assert wait_for(lambda: not any(t.name.startswith("selreload-watch") for t in threading.enumerate()))


def test_bad_arguments_are_refused(tmp_path: pathlib.Path) -> None:
    """An unknown mode or a negative quiet window is a ValueError naming the choices."""
    with pytest.raises(ValueError, match="'auto', 'inotify', 'poll'"):
        watch_path(tmp_path / "c.yaml", print, mode="fsevents")
    with pytest.raises(ValueError, match="quiet"):
        watch_path(tmp_path / "c.yaml", print, quiet=-1)


def test_file_moved_in_from_another_directory_reloads_once(tmp_path: pathlib.Path) -> None:
    """A file renamed in from an unwatched directory (a lone IN_MOVED_TO) reloads once."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(doc(1))
    staging = tmp_path / "staging"
    staging.mkdir()
    rig = Rig(conf / "config.yaml")
    with rig.reloader:
        (staging / "config.yaml").write_text(doc(2))
        os.replace(staging / "config.yaml", conf / "config.yaml")
        rig.expect_one_reload(2)


def test_config_directory_that_is_a_symlink_is_watched_where_it_points(tmp_path: pathlib.Path) -> None:
    """/etc/app -> /opt/app/v1: a save in the real directory reloads once."""
    real = tmp_path / "v1"
    real.mkdir()
    (real / "config.yaml").write_text(doc(1))
    os.symlink(real, tmp_path / "app")
    rig = Rig(tmp_path / "app" / "config.yaml")
    with rig.reloader:
        (real / "config.yaml").write_text(doc(2))
        rig.expect_one_reload(2)


def test_poll_mode_sees_a_configmap_swap(tmp_path: pathlib.Path) -> None:
    """The polling fallback notices a ..data symlink swap too."""
    (tmp_path / "..v1").mkdir()
    (tmp_path / "..v1" / "config.yaml").write_text(doc(1))
    os.symlink("..v1", tmp_path / "..data")
    os.symlink("..data/config.yaml", tmp_path / "config.yaml")
    calls: list[str] = []
    watcher = watch_path(tmp_path / "config.yaml", calls.append, mode="poll", poll_interval=0.05)
    try:
        (tmp_path / "..v2").mkdir()
        (tmp_path / "..v2" / "config.yaml").write_text(doc(2))
        os.symlink("..v2", tmp_path / "..data_tmp")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
        assert wait_for(lambda: TRIGGER in calls)
    finally:
        watcher.stop()


def test_the_switch_interval_is_short_while_a_watched_reload_runs(rig: Rig) -> None:
    """A reload from the watch runs with a 0.2 ms GIL switch interval (it gets the GIL back
    quickly beside busy threads) and the process's own interval is restored after it."""
    import sys

    before = sys.getswitchinterval()
    seen: list[float] = []
    rig.reloader.on("note", lambda changes, snapshot: seen.append(sys.getswitchinterval()))
    rig.path.write_text(doc(2, note="x"))
    assert wait_for(lambda: rig.reloader.current.note == "x")
    assert seen[-1] == pytest.approx(min(before, 0.0002))
    assert wait_for(lambda: sys.getswitchinterval() == before)


def test_a_symlink_swap_on_the_way_to_the_file_reloads_once_each_time(tmp_path: pathlib.Path) -> None:
    """config.yaml -> current/config.yaml, current -> v1: `current` swapped (a temporary
    symlink renamed onto it, as deploy tools do) reloads once, and so does the next swap
    (the names on the way are read again after one of them changed)."""
    for v in (1, 2, 3):
        (tmp_path / f"v{v}").mkdir()
        (tmp_path / f"v{v}" / "config.yaml").write_text(doc(v))
    os.symlink("v1", tmp_path / "current")
    os.symlink("current/config.yaml", tmp_path / "config.yaml")
    rig = Rig(tmp_path / "config.yaml")
    with rig.reloader:
        (tmp_path / "unrelated.txt").write_text("x")  # an event naming nothing on the way
        os.symlink("v2", tmp_path / "current.tmp")
        os.replace(tmp_path / "current.tmp", tmp_path / "current")
        rig.expect_one_reload(2)
        os.symlink("v3", tmp_path / "current.tmp")
        os.replace(tmp_path / "current.tmp", tmp_path / "current")
        assert wait_for(lambda: rig.reloader.current.a == 3)
        time.sleep(SETTLE)
        assert rig.audit.outcomes() == ["applied", "applied"]

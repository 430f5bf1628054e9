"""The inotify fast path: one thread from the kernel to the reload, no watchdog thread, no
descriptor left behind, and a kernel queue overflow read as "something changed"."""

from __future__ import annotations

import logging
import os
import pathlib
import resource
import threading
import time
from collections.abc import Callable

import pytest

from selreload import _inotify, _watch, _watch_hub
from selreload._watch import TRIGGER, watch_path

pytestmark = pytest.mark.skipif(not _inotify.available, reason="inotify is Linux only")

TIMEOUT = 10.0


def wait_for(pred: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.002)
    return pred()


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_the_watch_thread_itself_reads_the_kernel_and_notifies(tmp_path: pathlib.Path) -> None:
    """On Linux a watch starts no watchdog observer: the thread that reads inotify is the one
    that calls notify (kernel -> that thread -> reload: one wake-up per save)."""
    path = tmp_path / "config.yaml"
    path.write_text("a: 1\n")
    before = set(threading.enumerate())
    callers: list[threading.Thread] = []
    watcher = watch_path(path, lambda trigger: callers.append(threading.current_thread()))
    try:
        assert watcher.mode == "inotify" and "inotify" in repr(watcher)
        started = set(threading.enumerate()) - before
        assert [t.name for t in started] == ["selreload-watch:config.yaml"]
        assert all(hub._observer is None for hub in _watch_hub._HUBS.values())
        path.write_text("a: 2\n")
        assert wait_for(lambda: bool(callers))
        assert callers == [*started]
    finally:
        watcher.stop()


def test_start_and_stop_leave_no_descriptor_behind(tmp_path: pathlib.Path) -> None:
    """100 watches started and stopped (one stopped from its own notify) close their inotify
    instance and wake-up pipe: the process holds the descriptors it held before."""
    path = tmp_path / "config.yaml"
    path.write_text("a: 1\n")
    before = _fds()
    for _ in range(100):
        watch_path(path, lambda trigger: None).stop()
    done = threading.Event()
    holder: list[object] = []

    def stop_self(trigger: str) -> None:
        holder[0].stop()  # type: ignore[attr-defined]
        done.set()

    holder.append(watch_path(path, stop_self))
    path.write_text("a: 2\n")
    assert done.wait(TIMEOUT)
    assert wait_for(lambda: not any(t.name.startswith("selreload-watch") for t in threading.enumerate()))
    assert _fds() == before


def test_a_kernel_queue_overflow_notifies_once_more(tmp_path: pathlib.Path) -> None:
    """More events than the kernel queues (fs.inotify.max_queued_events) while a reload runs:
    the ones lost may have been a save, so the watch notifies once more when it returns."""
    limit = int(pathlib.Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 100_000:
        if os.environ.get("CI") == "true":
            pytest.fail(f"max_queued_events is {limit}: CI must be able to overflow the kernel queue")
        pytest.skip(f"max_queued_events is {limit}: too many files to write to overflow it")
    path = tmp_path / "config.yaml"
    path.write_text("a: 1\n")
    entered, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(trigger: str) -> None:
        calls.append(trigger)
        entered.set()
        release.wait(TIMEOUT)

    watcher = watch_path(path, slow)
    try:
        path.write_text("a: 2\n")
        assert entered.wait(TIMEOUT)
        # A modify each, alternating between two files (the kernel merges an event equal to
        # the last one queued); none of them names the config file.
        fds = [os.open(tmp_path / name, os.O_WRONLY | os.O_CREAT) for name in ("one.txt", "two.txt")]
        try:
            for i in range(limit + 10):
                os.write(fds[i % 2], b"x")
        finally:
            for fd in fds:
                os.close(fd)
        release.set()
        assert wait_for(lambda: len(calls) == 2), calls
        time.sleep(0.2)
        assert calls == [TRIGGER, TRIGGER]
    finally:
        release.set()
        watcher.stop()


def test_the_instance_is_non_blocking_and_close_on_exec() -> None:
    """A read never waits (and never lets the GIL go); a child process never inherits it."""
    ino = _inotify.Inotify()
    try:
        assert os.get_blocking(ino.fd) is False and os.get_inheritable(ino.fd) is False
        assert ino.read() == []
    finally:
        ino.close()
    ino.close()  # twice: nothing


def test_out_of_descriptors_for_an_instance_the_watch_goes_through_watchdog(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No inotify instance to be had (EMFILE: here the descriptor limit, in life
    fs.inotify.max_user_instances): the watch goes through watchdog's shared observer,
    which already watches the directory, and still sees a save."""
    caplog.set_level(logging.INFO, logger="selreload.watch")
    path = tmp_path / "config.yaml"
    path.write_text("a: 1\n")
    monkeypatch.setattr(_watch, "_fast_path", False)
    first = watch_path(path, lambda trigger: None)  # the observer watches the directory now
    monkeypatch.setattr(_watch, "_fast_path", True)
    calls: list[str] = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest = os.dup(0)  # the lowest free descriptor: a limit there refuses any new one
    os.close(lowest)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest, hard))
        try:
            second = watch_path(path, calls.append)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            assert second.mode == "native"
            assert "through watchdog instead" in caplog.text
            path.write_text("a: 2\n")
            assert wait_for(lambda: calls == [TRIGGER])
        finally:
            second.stop()
    finally:
        first.stop()

"""The shared observer hub: watchdog's private names still where the quarantine expects them,
one observer per kind, and a forked child that starts with an empty hub."""

from __future__ import annotations

import dataclasses
import inspect
import os
import pathlib
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable

import pytest
import watchdog
from watchdog.events import FileSystemEvent
from watchdog.observers.api import BaseObserver

from selreload import _watch, _watch_hub
from selreload._watch import TRIGGER, _PathWatcher, watch_path
from selreload._watch_hub import _Hub, _Listener, _native_observer

TIMEOUT = 10.0
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the quarantine patches inotify only")


def wait_for(pred: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.002)
    return pred()


class Seen(_Listener):
    """A listener that keeps what the hub routes to it, and the thread it ran on."""

    def __init__(self) -> None:
        self.children: list[FileSystemEvent] = []
        self.threads: set[threading.Thread] = set()

    def on_child(self, event: FileSystemEvent) -> None:
        self.threads.add(threading.current_thread())
        self.children.append(event)

    def on_dir(self, event: FileSystemEvent, path: str) -> None:
        pass


def _moved(where: str) -> str:
    return (
        f"watchdog {watchdog.__version__} moved {where}, a private name selreload/_watch_hub.py "
        "(_patch_observer) relies on; update the quarantine there and this test"
    )


@linux_only
def test_watchdog_private_names_are_where_the_quarantine_expects_them() -> None:
    """Each private name `_patch_observer` uses still exists on the real watchdog classes,
    with the role it relies on; a clear failure names the one that moved."""
    from watchdog.observers.inotify import InotifyEmitter, InotifyFullEmitter, InotifyObserver, InotifyWatchGroup
    from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper

    problems: list[str] = []
    if "generate_full_events" not in inspect.signature(InotifyObserver.__init__).parameters:
        problems.append(_moved("InotifyObserver(generate_full_events=...)"))
    if "self._emitter_class(" not in inspect.getsource(BaseObserver.schedule):
        problems.append(_moved("BaseObserver._emitter_class (schedule() no longer builds emitters from it)"))
    observer = InotifyObserver(generate_full_events=True)
    try:
        if vars(observer).get("_emitter_class") is not InotifyFullEmitter:
            problems.append(_moved("BaseObserver._emitter_class (not the instance's InotifyFullEmitter)"))
    finally:
        observer.stop()  # never started, but its inotify reader thread runs from construction on
    if "self._inotify = " not in inspect.getsource(InotifyEmitter.on_thread_start):
        problems.append(_moved("InotifyEmitter._inotify (no longer set by on_thread_start)"))
    if not dataclasses.is_dataclass(InotifyWatchGroup) or "_move_event_grouper" not in {
        f.name for f in dataclasses.fields(InotifyWatchGroup)
    }:
        problems.append(_moved("InotifyWatchGroup._move_event_grouper"))
    queue = getattr(InotifyMoveEventGrouper(), "_queue", None)
    if queue is None:
        problems.append(_moved("InotifyMoveEventGrouper._queue"))
    elif not isinstance(getattr(queue, "delay", None), int | float) or queue.delay <= 0:
        problems.append(_moved("InotifyMoveEventGrouper._queue.delay (the wait of a lone rename)"))
    if "queue_event(" not in inspect.getsource(InotifyEmitter.build_and_queue_event):
        problems.append(_moved("EventEmitter.queue_event (emitters no longer hand events through it)"))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@linux_only
def test_the_patched_observer_reports_a_lone_rename_from_the_emitter_thread(tmp_path: pathlib.Path) -> None:
    """The native observer the hub makes drops watchdog's 0.5 s move delay on every emitter
    and routes events from the emitter thread (not the observer's queue)."""
    watched, elsewhere = tmp_path / "a" / "watched", tmp_path / "b"
    watched.mkdir(parents=True)
    elsewhere.mkdir()
    (watched / "config.yaml").write_text("a: 1\n")
    hub = _Hub("native", _native_observer)
    seen = Seen()
    hub.attach(seen, str(watched))
    observer = hub._observer
    try:
        assert observer is not None
        emitters = observer.emitters
        assert wait_for(lambda: all(getattr(e, "_inotify", None) is not None for e in emitters))
        delays = [e._inotify._move_event_grouper._queue.delay for e in emitters]  # type: ignore[attr-defined]
        assert delays == [0.0] * len(emitters), _moved(f"the move delay (still {delays})")
        os.rename(watched / "config.yaml", elsewhere / "config.yaml")  # a lone IN_MOVED_FROM
        assert wait_for(lambda: any(e.event_type == "moved" for e in seen.children)), seen.children
        assert seen.threads and seen.threads <= set(emitters), "routed from another thread than the emitter's"
    finally:
        hub.detach(seen, str(watched))
    assert hub._observer is None and not observer.is_alive()


def test_one_observer_serves_every_watch_and_stops_with_the_last(tmp_path: pathlib.Path) -> None:
    """Two watches share one observer; it stops (thread joined) when the last one detaches."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    hub = _Hub("native", _native_observer)
    first, second = Seen(), Seen()
    hub.attach(first, str(one))
    observer = hub._observer
    hub.attach(second, str(two))
    assert observer is not None and hub._observer is observer
    assert "directories" in repr(hub)
    hub.detach(first, str(one))
    assert hub._observer is observer and observer.is_alive()
    hub.detach(second, str(two))
    assert hub._observer is None and not observer.is_alive()


# --- fork()


def _in_child(stale: _PathWatcher, generation: int, child_file: pathlib.Path) -> list[str]:
    problems = []
    if _watch_hub.generation() != generation + 1:
        problems.append(f"generation {_watch_hub.generation()}, expected {generation + 1}")
    if _watch_hub._HUBS:
        problems.append(f"the hub is not empty: {_watch_hub._HUBS}")
    if not stale.forked:
        problems.append("the parent's watch does not say it is forked")
    stale.stop()  # does nothing: above all, not remove the inotify watches the parent shares
    seen = threading.Event()
    fresh = watch_path(child_file, lambda trigger: seen.set())
    try:
        if fresh.forked or (fresh._hub is not None and fresh._hub is stale._hub):
            problems.append("the child's watch reuses the parent's hub")
        child_file.write_text("a: 2\n")
        if not seen.wait(TIMEOUT):
            problems.append("the child's new watch saw no write")
    finally:
        fresh.stop()
    return problems


def _fork(child: Callable[[], list[str]]) -> list[str]:
    """Run `child` in a forked child; its problems come back through a pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            problems = child()
            code = 0 if not problems else 1
            os.write(write, "\n".join(problems).encode())
        except Exception:  # noqa: BLE001 -- reported through the pipe; `finally` ends the child
            os.write(write, traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(write)
    deadline = time.monotonic() + 3 * TIMEOUT
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
        return ["the child hung (a lock held at fork()?)"]
    with os.fdopen(read, "rb") as fh:
        report = fh.read().decode()
    if os.waitstatus_to_exitcode(done[1]) != 0:
        return [report or f"the child exited with {done[1]}"]
    return []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork()")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("fast", [True, False], ids=["inotify", "watchdog"])
def test_a_forked_child_watches_afresh_and_the_parent_keeps_watching(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    """After fork() the child's hub is empty and a new watch there sees a write; the
    parent's old watch is inert in the child (stop() does nothing: above all it does not
    remove the watches of the inotify instance it shares with the parent) and keeps
    working in the parent. Both ways of watching: inotify read directly, and watchdog."""
    monkeypatch.setattr(_watch, "_fast_path", fast and _watch._fast_path)
    parent_file = tmp_path / "config.yaml"
    parent_file.write_text("a: 1\n")
    child_file = tmp_path / "child" / "config.yaml"
    child_file.parent.mkdir()
    calls: list[str] = []
    watcher = watch_path(parent_file, calls.append)
    try:
        generation = _watch_hub.generation()
        problems = _fork(lambda: _in_child(watcher, generation, child_file))
        assert problems == [], "\n".join(problems)
        assert not watcher.forked and _watch_hub.generation() == generation
        calls.clear()
        parent_file.write_text("a: 3\n")
        assert wait_for(lambda: TRIGGER in calls), "the parent's watch died with the child"
    finally:
        watcher.stop()

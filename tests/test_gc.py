"""Automatic garbage collection waits while a reload runs, and the user's setting comes back."""

from __future__ import annotations

import gc
import pathlib
import threading
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry

import selreload as sr
from selreload import _gc


@sr.config
class Cfg:
    level: str = sr.hot(default="info")


def _reloader(tmp_path: pathlib.Path, seen: list[bool]) -> tuple[sr.Reloader[Cfg], pathlib.Path]:
    path = tmp_path / "c.yaml"
    path.write_text("level: info\n")
    reloader = sr.Reloader(Cfg, sources=[sr.YamlFile(path, watch=False)], registry=CollectorRegistry())

    @reloader.on("level")
    def record(changes: Sequence[sr.Change], snapshot: Any) -> None:
        seen.append(gc.isenabled())

    return reloader, path


def test_collection_held_off_inside_a_reload_and_restored(tmp_path: pathlib.Path) -> None:
    """Inside a reload (where an applier runs) automatic collection is off; after, on again."""
    seen: list[bool] = []
    reloader, path = _reloader(tmp_path, seen)
    assert gc.isenabled()
    with reloader:
        path.write_text("level: debug\n")
        assert reloader.reload().outcome is sr.Outcome.APPLIED
    assert seen[-1] is False
    assert gc.isenabled()


def test_a_user_gc_disable_stays(tmp_path: pathlib.Path) -> None:
    """A process that turned automatic collection off keeps it off after reloads."""
    seen: list[bool] = []
    reloader, path = _reloader(tmp_path, seen)
    gc.disable()
    try:
        with reloader:
            path.write_text("level: debug\n")
            assert reloader.reload().outcome is sr.Outcome.APPLIED
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_blocks_restore_once_the_last_ends() -> None:
    """Two reloads overlapping in two threads: collection comes back only after both."""
    first_in, second_done, release = threading.Event(), threading.Event(), threading.Event()
    during: list[bool] = []

    def first() -> None:
        with _gc.deferred():
            first_in.set()
            release.wait(10)
            during.append(gc.isenabled())

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(10)
    with _gc.deferred():
        pass
    second_done.set()
    after_second = gc.isenabled()
    release.set()
    thread.join(10)
    assert after_second is False  # the first block still runs
    assert during == [False]
    assert gc.isenabled()

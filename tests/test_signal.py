"""SIGHUP (or any signal) as a reload trigger: handled on a worker thread, undone by stop()."""

from __future__ import annotations

import os
import pathlib
import signal
import threading
import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

import selreload as sr


@sr.config
class Cfg:
    a: int = sr.hot(default=0)


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.002)
    return pred()


def make(tmp_path: pathlib.Path) -> tuple[sr.Reloader[Cfg], pathlib.Path]:
    path = tmp_path / "config.yaml"
    path.write_text("a: 1\n")
    # Not watched: only the signal may reload it.
    return sr.Reloader(Cfg, sources=[sr.YamlFile(path, watch=False)], registry=CollectorRegistry()), path


def test_sighup_reloads_on_a_worker_thread(tmp_path: pathlib.Path) -> None:
    """SIGHUP reloads with trigger "signal", and the reload does not run in the handler."""
    reloader, path = make(tmp_path)
    results: list[tuple[str, str]] = []
    reloader.subscribe(lambda r: results.append((r.trigger, threading.current_thread().name)))
    with reloader:
        reloader.install_signal_handler(signal.SIGHUP)
        path.write_text("a: 2\n")
        os.kill(os.getpid(), signal.SIGHUP)
        assert wait_for(lambda: reloader.current.a == 2)
    assert results == [("signal", "selreload-signal")]


def test_signals_during_a_reload_fold_into_one_more(tmp_path: pathlib.Path) -> None:
    """Signals sent while a reload runs become one more reload, not one each."""
    reloader, path = make(tmp_path)
    gate, entered, armed = threading.Event(), threading.Event(), threading.Event()
    triggers: list[str] = []

    @reloader.on("a")
    def slow(changes: object, snapshot: object) -> None:
        if armed.is_set():  # not at start(): only the first signalled reload waits
            armed.clear()
            entered.set()
            gate.wait(10)

    reloader.subscribe(lambda r: triggers.append(r.trigger))
    with reloader:
        reloader.install_signal_handler()
        armed.set()
        path.write_text("a: 2\n")
        os.kill(os.getpid(), signal.SIGHUP)
        assert entered.wait(10)
        path.write_text("a: 3\n")
        for _ in range(5):
            os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.1)
        gate.set()
        assert wait_for(lambda: reloader.current.a == 3)
        time.sleep(0.3)
    assert triggers == ["signal", "signal"]


def test_stop_restores_the_previous_handler(tmp_path: pathlib.Path) -> None:
    """stop() puts back the handler that was there before and joins the worker."""
    reloader, _ = make(tmp_path)
    seen: list[int] = []

    def previous(signum: int, frame: object) -> None:
        seen.append(signum)

    old = signal.signal(signal.SIGUSR1, previous)
    try:
        reloader.start()
        reloader.install_signal_handler(signal.SIGUSR1)
        assert signal.getsignal(signal.SIGUSR1) is not previous
        reloader.stop()
        assert signal.getsignal(signal.SIGUSR1) is previous
        assert not any(t.name == "selreload-signal" for t in threading.enumerate())
        os.kill(os.getpid(), signal.SIGUSR1)
        assert wait_for(lambda: seen == [signal.SIGUSR1])
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_install_outside_the_main_thread_is_refused(tmp_path: pathlib.Path) -> None:
    """install_signal_handler() from another thread raises a RuntimeError saying why."""
    reloader, _ = make(tmp_path)
    errors: list[RuntimeError] = []

    def attempt() -> None:
        try:
            reloader.install_signal_handler()
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=attempt)
    t.start()
    t.join()
    assert len(errors) == 1
    assert "main thread" in str(errors[0])
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL


def test_signal_before_start_is_ignored_with_a_warning(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A signal that arrives before start() logs a warning and reloads nothing."""
    reloader, _ = make(tmp_path)
    reloader.install_signal_handler()
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        assert wait_for(lambda: any("start()" in r.getMessage() for r in caplog.records))
        assert reloader.snapshot is None
    finally:
        reloader.stop()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL

"""A storm of saves while readers read: no torn read, the last save wins, no reload twice."""

from __future__ import annotations

import itertools
import os
import pathlib
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

import selreload as sr

WRITES = 1_000
SPAN_S = 2.0


@sr.config
class Pair:
    a: int = sr.hot(default=0)
    b: int = sr.hot(default=0)


@pytest.mark.parametrize("quiet", [0.0, 0.02], ids=["no-quiet-window", "quiet-20ms"])
def test_storm_of_atomic_saves(tmp_path: pathlib.Path, quiet: float) -> None:
    """1,000 atomic saves in ~2 s with 2 threads reading `current` all along: every read
    sees a == b, the final live config is the last file written, and every reload applies
    a newer save than the one before (saves during a reload fold into one more). With a
    quiet window, at most one reload per window."""
    path = tmp_path / "config.yaml"
    path.write_text("a: 0\nb: 0\n")
    reloader = sr.Reloader(Pair, sources=[sr.YamlFile(path, quiet=quiet)], registry=CollectorRegistry())
    applied: list[int] = []
    reloader.subscribe(lambda result: applied.append(reloader.current.a))
    stop = threading.Event()
    torn: list[Pair] = []
    reads = [0, 0]

    def read(slot: int) -> None:
        while not stop.is_set():
            for _ in range(200):
                cfg = reloader.current
                if cfg.a != cfg.b:
                    torn.append(cfg)
            reads[slot] += 200
            # Let the GIL go now and then: two threads that never block would make every
            # other thread wait a full switch interval (5 ms) per system call.
            time.sleep(0)

    with reloader:
        readers = [threading.Thread(target=read, args=(i,)) for i in range(2)]
        for t in readers:
            t.start()
        try:
            tmp = tmp_path / ".config.yaml.tmp"
            t0 = time.monotonic()
            for n in range(1, WRITES + 1):
                tmp.write_text(f"a: {n}\nb: {n}\n")
                os.replace(tmp, path)
                lag = t0 + n * SPAN_S / WRITES - time.monotonic()
                if lag > 0:
                    time.sleep(lag)
            elapsed = time.monotonic() - t0
            deadline = time.monotonic() + 30
            while reloader.current.a != WRITES and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            stop.set()
            for t in readers:
                t.join()
        assert reloader.current == Pair(a=WRITES, b=WRITES)
    assert torn == []
    assert min(reads) > 0
    assert 1 <= len(applied) <= WRITES and applied[-1] == WRITES
    assert all(a < b for a, b in itertools.pairwise(applied)), "a save reloaded twice, or out of order"
    if quiet:
        # The throttle's bound: one leading reload, then at most one per quiet window.
        assert len(applied) <= elapsed / quiet + 2, f"{len(applied)} reloads for {WRITES} saves in {elapsed:.1f}s"
        assert len(applied) < WRITES // 2

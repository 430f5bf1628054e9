"""Watch benchmark: save-to-applier-done latency and reloads per save, by way of saving.

Patterns: in-place write, write-temp-then-rename, vim (rename away, new file, delete
backup), Kubernetes ConfigMap `..data` swap; each with the real watchdog observer and a
real Reloader on a small YAML file, 200 saves each. Beside them, in the same run, a naive
polling watcher: a thread that reads the file every second and reloads when the bytes
changed (10 saves per pattern: each costs up to a second).

The saves run in a separate process, as an editor or the kubelet would. Latency runs from
the moment the save is visible (the close or rename returned, CLOCK_MONOTONIC) to the end
of the applier call with the new value. Two threads read `current` throughout and check
an invariant every written file keeps (a == b): a torn read is counted. Reloads per save
counts APPLIED reloads; "other" counts attempts that were INVALID (a torn file).

Goals for a small config: p50 under 1.5 ms, p99 under 5 ms, 1.00 reload per save, 0 torn.
Run: .venv/bin/python benchmarks/bench_watch.py [--trials 200] [--poll-trials 10]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry

import selreload as sr


@sr.config
class Small:
    a: int = sr.hot(default=0)
    b: int = sr.hot(default=0)
    name: str = sr.hot(default="svc")
    level: str = sr.hot(default="info")
    flags: dict[str, bool] = sr.hot(factory=dict)


def doc(n: int) -> str:
    return f"a: {n}\nb: {n}\nname: svc\nlevel: info\nflags:\n  beta: true\n  dark: false\n"


# --- ways of saving, run in a separate process like an editor or the kubelet -------------------
# Each returns the moment (CLOCK_MONOTONIC, shared by all processes) just before the call
# that makes the new content visible (the close, the rename): taken after that call, the
# clock read can come after the whole reload when the saver loses its CPU to the watcher
# the call woke. A separate process keeps the saver off this process's GIL, as in life.


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def save_in_place(path: pathlib.Path, text: str) -> float:
    fh = open(path, "w")  # noqa: SIM115 - the close is what is timed
    fh.write(text)
    t0 = now()
    fh.close()
    return t0


def save_rename(path: pathlib.Path, text: str) -> float:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    t0 = now()
    os.replace(tmp, path)
    return t0


def save_vim(path: pathlib.Path, text: str) -> float:
    backup = path.with_name(path.name + "~")
    os.rename(path, backup)
    fh = open(path, "w")  # noqa: SIM115 - the close is what is timed
    fh.write(text)
    t0 = now()
    fh.close()
    backup.unlink()
    return t0


def save_configmap(path: pathlib.Path, text: str) -> float:
    """The kubelet's atomic writer: a new timestamped dir, a `..data_tmp` symlink to it
    renamed onto `..data`, the old dir deleted afterwards."""
    root = path.parent
    old = os.readlink(root / "..data") if (root / "..data").is_symlink() else None
    stamp = root / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir()
    (stamp / path.name).write_text(text)
    os.symlink(stamp.name, root / "..data_tmp")
    t0 = now()
    os.replace(root / "..data_tmp", root / "..data")
    if old is not None:
        shutil.rmtree(root / old)
    if not path.is_symlink():
        os.symlink(f"..data/{path.name}", path)
    return t0


SAVES = {"in-place": save_in_place, "rename": save_rename, "vim": save_vim, "configmap": save_configmap}


def saver_main() -> None:
    """The saver process: one `pattern<TAB>path<TAB>n` per line in, the save time out."""
    for line in sys.stdin:
        pattern, path, n = line.rstrip("\n").split("\t")
        t0 = SAVES[pattern](pathlib.Path(path), doc(int(n)))
        print(repr(t0), flush=True)


class Saver:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--saver"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def save(self, pattern: str, path: pathlib.Path, n: int) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{pattern}\t{path}\t{n}\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


# --- measuring -------------------------------------------------------------------------------


class Probe:
    """The applier and the readers: when each value arrived, and any torn read."""

    def __init__(self) -> None:
        self.done: dict[int, float] = {}
        self.applied = 0
        self.torn = 0
        self.cond = threading.Condition()

    def applier(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        cfg = snapshot.config
        if cfg.a != cfg.b:
            self.torn += 1
        with self.cond:
            self.done[cfg.a] = now()
            self.applied += 1
            self.cond.notify_all()

    def wait(self, n: int, timeout: float) -> float | None:
        with self.cond:
            self.cond.wait_for(lambda: n in self.done, timeout)
            return self.done.get(n)


READERS = 2


class Readers:
    def __init__(self, reloader: sr.Reloader[Small], probe: Probe, count: int) -> None:
        self.stop = threading.Event()
        self.reads = 0
        self.threads = [threading.Thread(target=self.run, args=(reloader, probe)) for _ in range(count)]

    def run(self, reloader: sr.Reloader[Small], probe: Probe) -> None:
        while not self.stop.is_set():
            for _ in range(200):
                cfg = reloader.current
                if cfg.a != cfg.b:
                    probe.torn += 1
            self.reads += 200
            time.sleep(0)  # let the GIL go: never-blocking threads stall every other one

    def __enter__(self) -> Readers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


class Audit:
    """Counts attempts by outcome (the Reloader records every one that is not UNCHANGED)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}

    def record(self, result: sr.ReloadResult, **_: Any) -> None:
        if result.trigger != "start":
            key = result.outcome.value
            self.outcomes[key] = self.outcomes.get(key, 0) + 1


class Row:
    def __init__(self, label: str, lat_ms: list[float], saves: int, probe: Probe, audit: Audit, lost: int) -> None:
        self.label = label
        self.lat = sorted(lat_ms)
        self.saves = saves
        self.applied = audit.outcomes.get("applied", 0)
        self.other = sum(v for k, v in audit.outcomes.items() if k != "applied")
        self.torn = probe.torn
        self.lost = lost

    def pct(self, q: float) -> float:
        if not self.lat:
            return float("nan")
        return self.lat[min(len(self.lat) - 1, round(q * (len(self.lat) - 1)))]


def measure(saver: Saver, pattern: str, trials: int, settle: float, *, watch: bool, poll_s: float = 1.0) -> Row:
    root = pathlib.Path(tempfile.mkdtemp(prefix="bench_watch_"))
    path = root / "config.yaml"
    if pattern == "configmap":
        saver.save(pattern, path, 0)  # lays out ..data and the config.yaml symlink
    else:
        path.write_text(doc(0))
    probe, audit = Probe(), Audit()
    label = pattern if watch else f"1s poll, {pattern}"
    source = sr.YamlFile(path) if watch else sr.YamlFile(path, watch=False)
    reloader = sr.Reloader(Small, sources=[source], audit=audit, registry=CollectorRegistry(), name=label)
    reloader.on("a", probe.applier)
    lat: list[float] = []
    lost = 0
    stop = threading.Event()

    def poll_loop() -> None:  # the naive design: read every second, reload on a change
        last = path.read_bytes()
        while not stop.wait(poll_s):
            data = path.read_bytes()
            if data != last:
                last = data
                reloader.reload(trigger="poll")

    poller = None if watch else threading.Thread(target=poll_loop)
    try:
        with reloader, Readers(reloader, probe, READERS):
            if poller is not None:
                poller.start()
            time.sleep(0.05)
            for n in range(1, trials + 1):
                if poller is not None:
                    time.sleep(random.uniform(0, poll_s))  # saves land anywhere in the poll period
                t0 = saver.save(pattern, path, n)
                t1 = probe.wait(n, timeout=5.0 + 2 * poll_s)
                if t1 is None:
                    lost += 1
                else:
                    lat.append((t1 - t0) * 1000)
                time.sleep(settle)  # room for a second reload of the same save to show up
            stop.set()
            if poller is not None:
                poller.join()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return Row(label, lat, trials, probe, audit, lost)


def main(argv: Sequence[str] | None = None) -> None:
    if argv is None and sys.argv[1:] == ["--saver"]:
        saver_main()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--poll-trials", type=int, default=10)
    parser.add_argument("--settle", type=float, default=0.03, help="seconds after each reload, to catch a second one")
    parser.add_argument("--readers", type=int, default=2, help="threads reading `current` throughout")
    args = parser.parse_args(argv)
    global READERS
    READERS = args.readers

    saver = Saver()
    try:
        rows = [
            measure(saver, p, args.trials, args.settle, watch=True) for p in ("in-place", "rename", "vim", "configmap")
        ]
        polls = [measure(saver, p, args.poll_trials, 0.0, watch=False) for p in ("in-place", "rename")]
    finally:
        saver.close()

    head = f"{'pattern':<20}{'saves':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'reloads/save':>14}"
    head += f"{'other':>7}{'torn':>6}{'lost':>6}"
    print(head)
    print("-" * len(head))
    for r in rows + polls:
        print(
            f"{r.label:<20}{r.saves:>6}{r.pct(0.5):>9.2f}{r.pct(0.99):>9.2f}{r.pct(1.0):>9.2f}"
            f"{r.applied / r.saves:>14.2f}{r.other:>7}{r.torn:>6}{r.lost:>6}"
        )
    poll_p50 = statistics.median(x for p in polls for x in p.lat)
    print()
    for r in rows:
        print(f"{r.label:<10} p50 {poll_p50 / r.pct(0.5):,.0f}x lower than the 1 s polling loop's ({poll_p50:.0f} ms)")
    ok = all(r.pct(0.5) < 1.5 and r.pct(0.99) < 5 and r.applied == r.saves and r.torn == 0 for r in rows)
    print(f"goal (p50 < 1.5 ms, p99 < 5 ms, 1 reload per save, 0 torn): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()

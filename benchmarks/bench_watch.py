"""Watch benchmark: save -> applier done, beside floors measured in the same run.

Contenders, interleaved round by round on the same save styles (in-place write,
write-temp-then-rename, vim's rename-away + new file, Kubernetes ConfigMap `..data` swap):

- `selreload`: a real Reloader on a real watched YamlFile (7 lines), one applier; `sr
  inline`: the same with `applier_timeout=None` (the applier on the reload thread).
- `floor`: the minimal pipeline: ctypes inotify on the directory, read, parse with the
  fastest parser here (rapidyaml, else PyYAML's C loader), one assignment.
- `poll 1ms`: Yelp staticconf's way: stat (mtime, size, inode) every 1 ms; on a change
  read, parse, assign.

The saves run in a separate process, as an editor or the kubelet would. Latency runs from
the moment just before the call that makes the save visible (the close or rename,
CLOCK_MONOTONIC) to the end of the applier (the assignment, for the floors). Reader
threads read the live config throughout and count torn reads (a != b: every written
file has a == b). Each figure is the minimum over `--rounds` rounds (GC left on).

Also measured: the storm (1,000 atomic saves in 2 s, last save -> applier, beside one
reload), and save -> applier with 8 CPU-bound reader threads (they never block), at the
default GIL switch interval and at smaller ones (`--busy-switch`), beside `wake`: a thread
woken by the save's inotify event that only reads the clock, the bound no in-process
watcher can beat (each blocking call hands the GIL to a busy thread, and getting it back
is a lottery among the waiting threads, one draw per switch interval).
The latency splits into event -> reload start (selreload: the source's load() is called;
the floor: its thread woke) and the reload itself (to the applier done / the assignment).

Run: .venv/bin/python benchmarks/bench_watch.py [--trials 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

import selreload as sr
from selreload import _inotify


@sr.config
class Small:
    a: int = sr.hot(default=0)
    b: int = sr.hot(default=0)
    name: str = sr.hot(default="svc")
    level: str = sr.hot(default="info")
    flags: dict[str, bool] = sr.hot(factory=dict)


def doc(n: int) -> str:
    return f"a: {n}\nb: {n}\nname: svc\nlevel: info\nflags:\n  beta: true\n  dark: false\n"


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# --- ways of saving, run in a separate process like an editor or the kubelet -------------------
# Each returns the moment just before the call that makes the new content visible (the close,
# the rename): taken after it, the clock read can come after the whole reload when the saver
# loses its CPU to the watcher the call woke.


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


def storm(path: pathlib.Path, first: int, count: int, span: float) -> float:
    """`count` atomic saves paced over `span` seconds; the time of the last one."""
    start = now()
    t0 = start
    for i in range(count):
        t0 = save_rename(path, doc(first + i))
        lag = start + (i + 1) * span / count - now()
        if lag > 0:
            time.sleep(lag)
    return t0


def saver_main() -> None:
    """The saver process: one `pattern<TAB>path<TAB>n[<TAB>count<TAB>span]` per line in, a time out."""
    for line in sys.stdin:
        pattern, path, n, *more = line.rstrip("\n").split("\t")
        if pattern == "storm":
            t0 = storm(pathlib.Path(path), int(n), int(more[0]), float(more[1]))
        else:
            t0 = SAVES[pattern](pathlib.Path(path), doc(int(n)))
        print(repr(t0), flush=True)


class Saver:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--saver"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def save(self, pattern: str, path: pathlib.Path, n: int, *more: object) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\t".join(map(str, (pattern, path, n, *more))) + "\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


# --- the floors -------------------------------------------------------------------------------


class Pair:
    __slots__ = ("a", "b")

    def __init__(self, a: int, b: int) -> None:
        self.a, self.b = a, b


def _fast_parser() -> tuple[str, Callable[[bytes], dict[str, Any]]]:
    try:
        import ryml
    except ImportError:
        import yaml

        return "PyYAML C", lambda data: yaml.load(data, Loader=yaml.CSafeLoader)

    def parse(data: bytes) -> dict[str, Any]:
        tree = ryml.parse_in_arena(data)
        out: dict[str, Any] = {}
        for node in ryml.children(tree, tree.root_id()):
            key = bytes(tree.key(node)).decode()
            if tree.is_map(node):
                out[key] = {bytes(tree.key(c)).decode(): bytes(tree.val(c)).decode() for c in ryml.children(tree, node)}
            else:
                out[key] = bytes(tree.val(node)).decode()
        return out

    return "rapidyaml", parse


PARSER, parse_fast = _fast_parser()


class Probe:
    """Where each contender reports: when each value arrived, reloads, torn reads."""

    def __init__(self) -> None:
        self.done: dict[int, float] = {}
        self.started: dict[int, float] = {}  # selreload: when load() began, by the value it read
        self.applied = 0
        self.other = 0
        self.torn = 0
        self.reads = 0  # reads by the reader threads, in batches of 200 (not locked: a rate)
        self.span = 0.0  # seconds the readers ran
        self.cond = threading.Condition()

    def arrived(self, a: int, b: int, t: float | None = None) -> None:
        t = now() if t is None else t
        if a != b:
            self.torn += 1
        with self.cond:
            self.done[a] = t
            self.applied += 1
            self.cond.notify_all()

    def wait(self, n: int, timeout: float) -> float | None:
        with self.cond:
            self.cond.wait_for(lambda: n in self.done, timeout)
            return self.done.get(n)


class Contender:
    name = ""
    current: Any

    @property
    def holder(self) -> Any:
        """What readers read `.current` from: the contender, or its Reloader."""
        return self

    def start(self, path: pathlib.Path, probe: Probe) -> None: ...
    def stop(self) -> None: ...


class Selreload(Contender):
    name = "selreload"
    applier_timeout: float | None = 5.0  # the Reloader's default: appliers on a worker thread, with a deadline

    def start(self, path: pathlib.Path, probe: Probe) -> None:
        class Timed(sr.YamlFile):
            def load(self) -> Any:
                t = now()
                layer = super().load()
                if layer.tree is not None:
                    probe.started.setdefault(int(layer.tree.get("a", -1)), t)
                return layer

        class Audit:
            def record(self, result: sr.ReloadResult, **_: Any) -> None:
                if result.trigger != "start" and result.outcome is not sr.Outcome.APPLIED:
                    probe.other += 1

        self.reloader = sr.Reloader(
            Small,
            sources=[Timed(path)],
            audit=Audit(),
            registry=CollectorRegistry(),
            applier_timeout=self.applier_timeout,
        )
        self.reloader.on("a", lambda changes, snapshot: probe.arrived(snapshot.config.a, snapshot.config.b))
        self.reloader.start()
        probe.applied = 0

    @property
    def current(self) -> Any:
        return self.reloader.current

    @property
    def holder(self) -> Any:
        return self.reloader

    def stop(self) -> None:
        self.reloader.stop()


class SelreloadInline(Selreload):
    """The same with `applier_timeout=None`: the applier runs on the reload thread (no
    deadline handoff): what a cheaper deadline could gain."""

    name = "sr inline"
    applier_timeout = None


class Floor(Contender):
    """ctypes inotify on the directory, read, parse, one assignment."""

    name = "floor"
    mask = _inotify.IN_CLOSE_WRITE | _inotify.IN_MOVED_TO

    def start(self, path: pathlib.Path, probe: Probe) -> None:
        self.current = Pair(0, 0)
        self.ino = _inotify.Inotify()
        self.ino.add(str(path.parent), self.mask)
        self.r, self.w = os.pipe()
        self.thread = threading.Thread(target=self.run, args=(path, probe), daemon=True)
        self.thread.start()

    def run(self, path: pathlib.Path, probe: Probe) -> None:
        poller = select.poll()
        poller.register(self.ino.fd, select.POLLIN)
        poller.register(self.r, select.POLLIN)
        while True:
            poller.poll()
            woke = now()  # the first bytecode after the GIL came back
            events = self.ino.read()
            if not events:
                return  # the stop pipe
            self.handle(events, path, probe, woke)

    def handle(self, events: list[_inotify.Event], path: pathlib.Path, probe: Probe, woke: float) -> None:
        if any(e.name in (path.name, "..data") for e in events):
            with open(path, "rb") as fh:
                tree = parse_fast(fh.read())
            cfg = self.current = Pair(int(tree["a"]), int(tree["b"]))
            probe.started.setdefault(cfg.a, woke)
            probe.arrived(cfg.a, cfg.b)

    def stop(self) -> None:
        os.write(self.w, b"x")
        self.thread.join()
        self.ino.close()
        os.close(self.r)
        os.close(self.w)


class Wake(Floor):
    """The least any in-process watcher does: a thread blocked on the inotify fd, woken by
    the save, takes the GIL back and reads the clock. Nothing read, nothing parsed: one GIL
    acquisition after the kernel's event. Beside CPU-bound threads, no pipeline that
    wakes a Python thread can beat it. Save styles with one matching event per save only
    (rename): each event counts as the next save."""

    name = "wake"
    mask = _inotify.IN_MOVED_TO
    seen = 0

    def handle(self, events: list[_inotify.Event], path: pathlib.Path, probe: Probe, woke: float) -> None:
        for event in events:
            if event.name == path.name:
                self.seen += 1
                probe.started.setdefault(self.seen, woke)
                probe.arrived(self.seen, self.seen, woke)


class Poll(Contender):
    """staticconf's way: stat every 1 ms, read and parse on a change."""

    name = "poll 1ms"

    def start(self, path: pathlib.Path, probe: Probe) -> None:
        self.current = Pair(0, 0)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, args=(path, probe), daemon=True)
        self.thread.start()

    def run(self, path: pathlib.Path, probe: Probe) -> None:
        def key() -> tuple[int, int, int]:
            st = os.stat(path)
            return st.st_mtime_ns, st.st_size, st.st_ino

        last = key()
        while not self.stopping.wait(0.001):
            try:
                seen = key()
                if seen == last:
                    continue
                last = seen
                with open(path, "rb") as fh:
                    tree = parse_fast(fh.read())
                cfg = self.current = Pair(int(tree["a"]), int(tree["b"]))
            except (OSError, KeyError, ValueError, TypeError):
                probe.other += 1  # a torn or missing file
                continue
            probe.arrived(cfg.a, cfg.b)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


CONTENDERS: dict[str, type[Contender]] = {
    "selreload": Selreload,
    "sr inline": SelreloadInline,
    "floor": Floor,
    "poll 1ms": Poll,
}
BUSY_ONLY: dict[str, type[Contender]] = {"wake": Wake}
BUSY = ("selreload", "sr inline", "floor", "wake")
"""The contenders beside 8 CPU-bound readers: `wake` is the bound no watcher can beat."""


class Readers:
    """Threads that read the live config all along; `busy`: they never block (CPU-bound)."""

    def __init__(self, contender: Contender, probe: Probe, count: int, *, busy: bool) -> None:
        self.stop = threading.Event()
        self.probe = probe
        self.threads = [threading.Thread(target=self.run, args=(contender, probe, busy)) for _ in range(count)]

    def run(self, contender: Contender, probe: Probe, busy: bool) -> None:
        holder = contender.holder
        while not self.stop.is_set():
            for _ in range(200):
                cfg = holder.current
                if cfg.a != cfg.b:
                    probe.torn += 1
            probe.reads += 200
            if not busy:
                time.sleep(0)  # let the GIL go now and then, like a thread that does I/O

    def __enter__(self) -> Readers:
        self.t0 = now()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()
        self.probe.span += now() - self.t0


# --- measuring ----------------------------------------------------------------------------------


class Row:
    def __init__(
        self, lat_ms: list[float], saves: int, probe: Probe, lost: int, split: list[tuple[float, float]]
    ) -> None:
        self.lat = sorted(lat_ms)
        self.saves = saves
        self.applied = probe.applied
        self.other = probe.other
        self.torn = probe.torn
        self.lost = lost
        self.read_rate = probe.reads / probe.span if probe.span else 0.0
        self.wake = sorted(w for w, _ in split)
        self.reload = sorted(r for _, r in split)


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def layout(saver: Saver, pattern: str) -> tuple[pathlib.Path, pathlib.Path]:
    root = pathlib.Path(tempfile.mkdtemp(prefix="bench_watch_"))
    path = root / "config.yaml"
    if pattern == "configmap":
        saver.save(pattern, path, 0)  # lays out ..data and the config.yaml symlink
    else:
        path.write_text(doc(0))
    return root, path


def measure(saver: Saver, name: str, pattern: str, trials: int, readers: int, *, busy: bool = False) -> Row:
    root, path = layout(saver, pattern)
    probe = Probe()
    contender = (CONTENDERS | BUSY_ONLY)[name]()
    lat: list[float] = []
    split: list[tuple[float, float]] = []
    lost = 0
    contender.start(path, probe)
    try:
        with Readers(contender, probe, readers, busy=busy):
            time.sleep(0.05)
            for n in range(1, trials + 1):
                t0 = saver.save(pattern, path, n)
                t1 = probe.wait(n, timeout=5.0)
                if t1 is None:
                    lost += 1
                    continue
                lat.append((t1 - t0) * 1000)
                if n in probe.started:
                    split.append(((probe.started[n] - t0) * 1000, (t1 - probe.started[n]) * 1000))
                time.sleep(0.03)  # past a 20 ms quiet window, and room for a second reload to show up
    finally:
        contender.stop()
        shutil.rmtree(root, ignore_errors=True)
    return Row(lat, trials, probe, lost, split)


def measure_storm(saver: Saver, name: str, count: int, span: float, readers: int) -> tuple[float, int, int]:
    """The storm: last save -> applier (ms), reloads, torn reads."""
    root, path = layout(saver, "rename")
    probe = Probe()
    contender = CONTENDERS[name]()
    contender.start(path, probe)
    try:
        with Readers(contender, probe, readers, busy=False):
            time.sleep(0.05)
            t0 = saver.save("storm", path, 1, count, span)
            t1 = probe.wait(count, timeout=30.0)
    finally:
        contender.stop()
        shutil.rmtree(root, ignore_errors=True)
    return ((t1 - t0) * 1000 if t1 is not None else float("inf")), probe.applied, probe.torn


def best(rows: list[Row]) -> dict[str, Any]:
    """The minimum over rounds of each figure (counts: summed)."""
    return {
        "p50": min(pct(r.lat, 0.5) for r in rows),
        "p99": min(pct(r.lat, 0.99) for r in rows),
        "wake": min(pct(r.wake, 0.5) for r in rows),
        "reload": min(pct(r.reload, 0.5) for r in rows),
        "saves": sum(r.saves for r in rows),
        "applied": sum(r.applied for r in rows),
        "other": sum(r.other for r in rows),
        "torn": sum(r.torn for r in rows),
        "lost": sum(r.lost for r in rows),
        "reads/s": max(r.read_rate for r in rows),
    }


def print_busy(busy: dict[tuple[float, str], list[Row]], intervals: list[float], rounds: int, trials: int) -> None:
    print()
    print(f"beside 8 CPU-bound readers (rename, min over {rounds} rounds of {trials} saves), ms;")
    print("`wake`: the first bytecode of a thread the save woke (one GIL acquisition, nothing read):")
    for interval in intervals:
        print(f"  sys.setswitchinterval({interval:g}){' (the default)' if interval == intervals[0] else ''}:")
        for name in BUSY:
            b = best(busy[(interval, name)])
            print(
                f"    {name:<11} p50 {b['p50']:7.2f}  p99 {b['p99']:7.2f}  reloads/save"
                f" {b['applied'] / b['saves']:.2f}  torn {b['torn']}  lost {b['lost']}"
                f"  readers {b['reads/s'] / 1e6:5.2f} M reads/s"
            )
        ours, bound = best(busy[(interval, "selreload")])["p99"], best(busy[(interval, "wake")])["p99"]
        verdict = "met" if ours < 25 else "NOT met"
        if ours >= 25 and bound >= 25:
            verdict += f": out of reach at this interval, the wake alone takes p99 {bound:.1f} ms"
        print(f"    goal selreload p99 < 25 ms: {verdict}")


def main(argv: Sequence[str] | None = None) -> None:
    if argv is None and sys.argv[1:] == ["--saver"]:
        saver_main()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="saves per style, contender and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--readers", type=int, default=2, help="threads reading the live config throughout")
    parser.add_argument("--busy-trials", type=int, default=40, help="saves beside 8 CPU-bound readers")
    parser.add_argument("--storm", type=int, default=1000, help="saves in the storm (0: skip)")
    parser.add_argument(
        "--busy-switch",
        default=f"{sys.getswitchinterval()},0.001,0.0002,0.0001",
        help="GIL switch intervals (s) to measure the busy readers at, comma-separated; the first is the default",
    )
    args = parser.parse_args(argv)
    intervals = [float(x) for x in args.busy_switch.split(",")]
    patterns = list(SAVES)
    saver = Saver()
    results: dict[tuple[str, str], list[Row]] = {}
    busy: dict[tuple[float, str], list[Row]] = {}
    storms: dict[str, list[tuple[float, int, int]]] = {}
    try:
        for _ in range(args.rounds):
            for pattern in patterns:
                for name in CONTENDERS:
                    results.setdefault((name, pattern), []).append(
                        measure(saver, name, pattern, args.trials, args.readers)
                    )
            default = sys.getswitchinterval()
            for interval in intervals if args.busy_trials else ():
                sys.setswitchinterval(interval)
                try:
                    for name in BUSY:
                        row = measure(saver, name, "rename", args.busy_trials, 8, busy=True)
                        busy.setdefault((interval, name), []).append(row)
                finally:
                    sys.setswitchinterval(default)
            if args.storm:
                for name in ("selreload", "floor", "poll 1ms"):
                    storms.setdefault(name, []).append(measure_storm(saver, name, args.storm, 2.0, args.readers))
    finally:
        saver.close()

    print(f"save -> applier done, ms (min over {args.rounds} rounds of {args.trials} saves; {args.readers} readers;")
    print(f"floor parses with {PARSER}); split: event -> reload start (floor: woken) | reload (floor: read+parse)")
    head = f"{'style':<11}{'contender':<11}{'p50':>7}{'p99':>7}{'p50/fl':>8}{'p99/fl':>8}"
    head += f"{'reloads/save':>13}{'other':>6}{'torn':>5}{'lost':>5}{'wake':>7}{'reload':>8}"
    print(head)
    print("-" * len(head))
    verdicts = []
    for pattern in patterns:
        floor = best(results[("floor", pattern)])
        for name in CONTENDERS:
            b = best(results[(name, pattern)])
            line = f"{pattern:<11}{name:<11}{b['p50']:>7.2f}{b['p99']:>7.2f}"
            line += f"{b['p50'] / floor['p50']:>8.2f}{b['p99'] / floor['p99']:>8.2f}"
            line += f"{b['applied'] / b['saves']:>13.2f}{b['other']:>6}{b['torn']:>5}{b['lost']:>5}"
            if name != "poll 1ms":
                line += f"{b['wake']:>7.2f}{b['reload']:>8.2f}"
            print(line)
        ours, poll = best(results[("selreload", pattern)]), best(results[("poll 1ms", pattern)])
        verdicts.append(
            (
                pattern,
                ours["p50"] <= 1.5 * floor["p50"],
                ours["p99"] <= 2 * floor["p99"],
                ours["p50"] < poll["p50"],
                ours["applied"] == ours["saves"] and ours["torn"] == 0 and ours["other"] == 0,
            )
        )
    print()
    for pattern, p50_ok, p99_ok, poll_ok, exact in verdicts:
        print(
            f"{pattern:<11} p50 <= 1.5x floor: {'met' if p50_ok else 'NOT met'}; p99 <= 2x floor: "
            f"{'met' if p99_ok else 'NOT met'}; faster than a 1 ms poll: {'met' if poll_ok else 'NOT met'}; "
            f"1 reload per save, 0 torn: {'met' if exact else 'NOT met'}"
        )
    if busy:
        print_busy(busy, intervals, args.rounds, args.busy_trials)
    if storms:
        one = min(best(results[("selreload", p)])["reload"] for p in patterns)
        print()
        print(f"storm: {args.storm} atomic saves in 2 s, last save -> applier (min over {args.rounds} rounds), ms:")
        for name, runs in storms.items():
            settle = min(r[0] for r in runs)
            print(f"  {name:<11} {settle:7.2f}  reloads {min(r[1] for r in runs):>5}  torn {sum(r[2] for r in runs)}")
        settle = min(r[0] for r in storms["selreload"])
        print(f"  one selreload reload: {one:.2f} ms; goal settle <= 2x: {'met' if settle <= 2 * one else 'NOT met'}")


if __name__ == "__main__":
    main()

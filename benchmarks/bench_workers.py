"""Override-to-all-workers-applied latency: `set_overrides` from write to every worker's ACK.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_workers.py [--workers 3 8] [--n 50]

Each worker is a separate Python process with a Reloader on one YAML file and a shared
control directory (on the temp dir's filesystem); the timer runs from the write of
overrides.json to the moment every live worker's report names that write as applied.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selreload._statedir import StateDir  # noqa: E402
from selreload._workers import set_overrides  # noqa: E402

WORKER = """
import sys, time
import selreload as sr

@sr.config
class App:
    message: str = sr.hot(default="a")

r = sr.Reloader(App, [sr.YamlFile(sys.argv[1])], state_dir=sys.argv[2])
r.start()
print("up", flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
r.stop()
"""


def run(workers: int, n: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = pathlib.Path(tmp) / "config.yaml"
        cfg.write_text("message: one\n")
        state = StateDir(pathlib.Path(tmp) / "state")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-c", WORKER, str(cfg), str(state.path)]
        procs = [subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(workers)]
        try:
            for p in procs:
                assert p.stdout is not None and p.stdout.readline() == b"up\n"
            while len(state.workers().rows) < workers:
                time.sleep(0.01)
            samples = []
            for i in range(n + 5):
                t0 = time.perf_counter()
                answer = set_overrides(state, {"message": f"v{i}"}, actor="bench", timeout=5)
                elapsed = time.perf_counter() - t0
                if not answer.complete or len(answer.acked) != workers:
                    raise SystemExit(f"override {i}: {answer.summary()}")
                if i >= 5:  # warm-up: first parses, first inotify watches
                    samples.append(elapsed)
            return samples
        finally:
            for p in procs:
                assert p.stdin is not None and p.stdout is not None
                p.stdin.close()
                p.wait(10)
                p.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[3, 8])
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    print(f"override -> every worker applied, {args.n} overrides each (ms)")
    for workers in args.workers:
        s = sorted(run(workers, args.n))
        p99 = s[min(len(s) - 1, round(0.99 * (len(s) - 1)))]
        print(
            f"{workers} workers: p50 {statistics.median(s) * 1e3:6.2f}  p99 {p99 * 1e3:6.2f}"
            f"  max {s[-1] * 1e3:6.2f}  (cpus: {os.cpu_count()})"
        )


if __name__ == "__main__":
    main()

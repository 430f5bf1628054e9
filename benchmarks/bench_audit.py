"""Audit benchmark: `verify_audit` throughput and peak memory on a 1e6-record log.

The log is written in the exact on-disk format (a realistic ~300-byte reload record,
hash-chained), then verified in child processes so each run's peak RSS (ru_maxrss) is
its own; the RSS after imports is subtracted. Beside it, interleaved in the same run, a
floor: a bare loop that reads each line, `json.loads` it and sha256es it, which is the
least any verifier of this format does. Minimum of several runs, GC left on.

Goal: verify within 1.5x of the floor's time; peak memory flat in the file size.
Run: .venv/bin/python benchmarks/bench_audit.py [--records 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import selreload as sr
from selreload._audit import GENESIS, canonical


def write_log(path: str, records: int) -> int:
    # A ~300-byte reload record; the canonical text built by formatting (json.dumps per
    # record would take longer than the verify being measured). Checked once below.
    template = (
        '{"ts":"2026-11-22T16:12:59.585168+00:00","config":"myapp","version":%d,"previous_version":%d,'
        '"trigger":"file","actor":null,"outcome":"applied","changes":[{"path":"logging.level","old":"info",'
        '"new":"debug","policy":"hot","action":"apply"}],"errors":[],"digest":"194728be","prev_hash":"%s"}'
    )
    prev = GENESIS
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(records):
            body = template % (i + 1, i, prev)
            prev = hashlib.sha256(body.encode()).hexdigest()
            fh.write(f'{body[:-1]},"hash":"{prev}"}}\n')
    with open(path, "rb") as fh:
        first = json.loads(fh.readline())
    if canonical(first) != (template % (1, 0, GENESIS)).encode():
        raise SystemExit("the generated record is not in canonical form")
    return os.path.getsize(path)


def floor(path: str) -> int:
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            json.loads(line)
            hashlib.sha256(line).hexdigest()
            n += 1
    return n


def child(kind: str, path: str) -> None:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # after imports
    start = time.perf_counter()
    if kind == "verify":
        result = sr.verify_audit(path)
        if not result.ok:
            raise SystemExit(f"verify failed: {result}")
        n = result.records
    else:
        n = floor(path)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"records": n, "seconds": seconds, "extra_kb": peak - base, "peak_kb": peak}))


def measure(kind: str, path: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, path], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "audit.jsonl")
        t0 = time.perf_counter()
        size = write_log(path, args.records)
        print(f"log: {args.records:,} records, {size / 1e6:.0f} MB, written in {time.perf_counter() - t0:.1f} s")
        runs: dict[str, list[dict[str, float]]] = {"floor": [], "verify": []}
        for _ in range(args.runs):  # interleaved: both see the same machine load
            for kind in ("floor", "verify"):
                runs[kind].append(measure(kind, path))
        best = {kind: min(r, key=lambda x: x["seconds"]) for kind, r in runs.items()}
        for kind in ("floor", "verify"):
            b = best[kind]
            print(
                f"{kind:>7}: {b['records'] / b['seconds']:>10,.0f} records/s  ({b['seconds']:.2f} s, min of "
                f"{args.runs})  peak RSS {max(r['peak_kb'] for r in runs[kind]) / 1024:.1f} MiB"
                f" (+{max(r['extra_kb'] for r in runs[kind]) / 1024:.1f} over the imports)"
            )
        print(f"  ratio: verify takes {best['verify']['seconds'] / best['floor']['seconds']:.2f}x the floor's time")


if __name__ == "__main__":
    main()

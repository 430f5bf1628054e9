"""The fuzz of `tests/test_fuzz.py`, run ~100x longer: cases tried per format, defects found.

    PYTHONPATH=. python benchmarks/fuzz_long.py --seconds 300 [--seed N]

Exits 1 on any defect (an exception out of `reload()`, an invalid config live, the secret
shown, a case over 1 s), printing each with the input that caused it. With rapidyaml
installed, every YAML case is also read through one `Sections` that cuts documents at
every size (a source cuts only from 2 kB): each tree it gives must be ruamel's, type for
type, and one it accepts must be one ruamel accepts. Every JSON case is read through one
`Entries` (the JSON entry cut) the same way, against `json.loads`.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import random
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

from test_fuzz import FORMATS, cut_defects, defects, harness, json_cut_defects, mutate, original, random_operations

from selreload import _ryml
from selreload.sources._json import Entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="time budget (default 120)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    rng = random.Random(seed)
    logging.disable(logging.CRITICAL)  # every INVALID logs an error: millions of lines
    root = pathlib.Path(tempfile.mkdtemp(prefix="fuzz-long-"))
    harnesses = {fmt: harness(fmt, root / fmt) for fmt in FORMATS if (root / fmt).mkdir() is None}
    tried = dict.fromkeys(FORMATS, 0)
    sections = _ryml.Sections(min_size=0) if _ryml.parser() is not None else None
    entries = Entries(min_size=0, min_entry=0)
    found: list[str] = []
    deadline = time.monotonic() + args.seconds
    try:
        while time.monotonic() < deadline:
            fmt = rng.choice(FORMATS)
            text = mutate(original(fmt), random_operations(rng))
            tried[fmt] += 1
            found_here = defects(harnesses[fmt], text)
            if fmt == "yaml" and sections is not None:
                found_here += cut_defects(sections, text)
            if fmt == "json":
                found_here += json_cut_defects(entries, text)
            for defect in found_here:
                found.append(f"{fmt}: {defect}\n    input: {text[:300]!r}")
    finally:
        for h in harnesses.values():
            h.reloader.stop()
    print(f"seed {seed}, {args.seconds:.0f} s")
    for fmt, n in tried.items():
        print(f"  {fmt:5} {n:8,} cases")
    print(f"  total {sum(tried.values()):8,} cases")
    print(f"  defects found: {len(found)}")
    for line in found[:50]:
        print("  " + line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

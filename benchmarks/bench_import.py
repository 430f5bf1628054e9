"""Import benchmark: what `import selreload` costs, next to pydantic-settings and dynaconf.

Each row is `python -X importtime -c "import X"` in a fresh interpreter, best of 7 runs:
the cumulative time of the top-level import (importtime's own figure, so interpreter
start-up is left out) and the number of modules in `sys.modules` afterwards (the bare
interpreter's own modules included, shown as the first row). Rows:

- `import selreload`: what the issue's goal is about (under 60 ms and 150 modules).
- `selreload, ready to use`: `import selreload as sr` then touching `sr.config`,
  `sr.Reloader`, `sr.YamlFile` and `sr.Env`: what a service over files pays before its
  first line of config code (names load on first use).
- `pydantic_settings`, `dynaconf`: the floors, installed into a throwaway venv inside this
  run (beside this interpreter's selreload dependencies there is no room for them in the
  dev environment); skipped with a note when the package index does not have them.

Run: `python benchmarks/bench_import.py` (`make bench` runs it too).
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tempfile
import venv

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNS = 7
GOAL_MS, GOAL_MODULES = 60.0, 150

COUNT = "import sys; {code}; print(len(sys.modules))"


def measure(python: str, code: str, top: str, *, env: dict[str, str] | None = None) -> tuple[float, int]:
    """(best cumulative ms of the `top` import over RUNS runs, modules loaded)."""
    times: list[float] = []
    modules = 0
    for _ in range(RUNS):
        r = subprocess.run(
            [python, "-X", "importtime", "-c", COUNT.format(code=code)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        modules = int(r.stdout.strip().splitlines()[-1])
        total = 0.0
        for line in r.stderr.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)$", line)
            # Top-level imports only (no indent): `top` and whatever the touched names load.
            if m and not m[2] and (m[3] == top or m[3].startswith(top + ".")):
                total += int(m[1]) / 1000
        times.append(total)
    return min(times), modules


def floor_env() -> str | None:
    """A throwaway venv with pydantic-settings and dynaconf, or None (with a note) when
    they cannot be installed."""
    where = pathlib.Path(tempfile.mkdtemp(prefix="selreload-bench-import-"))
    venv.create(where, with_pip=True)
    python = str(where / "bin" / "python")
    r = subprocess.run(
        [python, "-m", "pip", "install", "-q", "pydantic-settings", "dynaconf"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if r.returncode != 0:
        print(f"note: pydantic-settings and dynaconf rows skipped: pip install failed: {r.stderr.strip()[-300:]}")
        return None
    return python


def main() -> int:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    ready = "import selreload as sr; sr.config, sr.Reloader, sr.YamlFile, sr.Env"
    rows: list[tuple[str, float | None, int]] = []
    _, bare = measure(sys.executable, "pass", "-", env=env)
    rows.append(("(bare interpreter)", None, bare))
    ms, n = measure(sys.executable, "import selreload", "selreload", env=env)
    rows.append(("import selreload", ms, n))
    selreload_ms, selreload_n = ms, n
    ms, n = measure(sys.executable, ready, "selreload", env=env)
    rows.append(("selreload, ready to use", ms, n))
    floor = floor_env()
    if floor is not None:
        for module in ("pydantic_settings", "dynaconf"):
            ms, n = measure(floor, f"import {module}", module)
            rows.append((f"import {module}", ms, n))
    print(f"{'':28}{'ms (best of ' + str(RUNS) + ')':>18}{'modules':>10}")
    for name, ms_, n_ in rows:
        print(f"{name:28}{'' if ms_ is None else f'{ms_:.1f}':>18}{n_:>10}")
    ok = selreload_ms < GOAL_MS and selreload_n < GOAL_MODULES
    print(f"goal: import selreload under {GOAL_MS:.0f} ms and {GOAL_MODULES} modules: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

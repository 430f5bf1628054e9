"""The README's demo steps, run as written: its shell blocks in one bash session with real
curl against a live `selreload demo`, and the file edits its bullets describe in between."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).parent.parent
README = ROOT / "README.md"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_blocks() -> list[str]:
    """The shell blocks of the README's "What to try in the demo" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## What to try in the demo", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def script(blocks: list[str], port: int, edit: str) -> str:
    """One bash session: each command echoed as a marker, then run; the edit between the
    blocks. The only rewrite is the port (8000 may be taken by anything on this machine)."""
    lines = ["set -o pipefail"]
    for i, block in enumerate(blocks):
        if i:
            lines.append(edit)
        for command in block.strip().splitlines():
            lines.append(f"echo {shlex.quote('$ ' + command)}")
            lines.append(command.replace("localhost:8000", f"localhost:{port}") + ' || echo "exit=$?"')
            lines.append("echo")  # curl's JSON ends without a newline
    return "\n".join(lines) + "\n"


def outputs(text: str) -> dict[str, str]:
    """`{command: its output}` from the markers (a trailing `# comment` left out of the key)."""
    found: dict[str, str] = {}
    for chunk in re.split(r"^\$ ", text, flags=re.M)[1:]:
        command, _, out = chunk.partition("\n")
        found[re.sub(r"\s+#.*$", "", command).strip()] = out
    return found


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_readme_demo_steps_work_verbatim(tmp_path: pathlib.Path) -> None:
    """From a fresh directory: the demo writes its token file (0600) that the README reads;
    every curl in the README answers (no 401), the hot edit of the first bullet is live,
    the admin POSTs succeed with `$TOKEN`, and `.venv/bin/selreload audit verify` passes."""
    blocks = demo_blocks()
    assert len(blocks) == 2 and "TOKEN=$(cat selreload-demo/admin-token)" in blocks[0]
    # `.venv/bin/selreload`, as `make demo` leaves it in a clone: this interpreter's selreload.
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "selreload").write_text(f'#!/bin/sh\nexec {sys.executable} -m selreload "$@"\n')
    (bin_dir / "selreload").chmod(0o755)
    port = free_port()
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=os.pathsep.join([str(ROOT), *sys.path]))
    env.pop("SELRELOAD_ADMIN_TOKEN", None)
    out = open(tmp_path / "demo.out", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(bin_dir / "selreload"), "demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        token = tmp_path / "selreload-demo" / "admin-token"
        deadline = time.monotonic() + 30
        while b"selreload demo on" not in (tmp_path / "demo.out").read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "demo.out").read_text()
            time.sleep(0.1)
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
        # The first bullet, as a person would do it: set logging.level: debug, and wait for it.
        edit = (
            "sed -i 's/level: info /level: debug/' selreload-demo/config.yaml\n"
            f'for i in $(seq 100); do curl -s localhost:{port}/ | grep -q \'"level":"debug"\' && break; sleep 0.1; done'
        )
        run = subprocess.run(
            ["bash", "-c", script(blocks, port, edit)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        out.close()
    assert run.returncode == 0, run.stderr
    got = outputs(run.stdout)
    assert "exit=" not in run.stdout, run.stdout
    assert json.loads(got["curl -s localhost:8000/"])["logging"]["level"] == "info"
    assert json.loads(got["curl -s localhost:8000/config"])["version"] == 1
    assert 'selreload_config_version{config="demo"} 1.0' in got["curl -s localhost:8000/metrics | grep selreload_"]
    reload = json.loads(got['curl -s -X POST -H "Authorization: Bearer $TOKEN" localhost:8000/reload'])
    assert reload["outcome"] == "unchanged" and reload["version"] == 2  # the edit was already live
    assert [h["version"] for h in json.loads(got["curl -s localhost:8000/history"])] == [1, 2]
    rollback = json.loads(got['curl -s -X POST -H "Authorization: Bearer $TOKEN" localhost:8000/rollback/1'])
    assert rollback["outcome"] == "applied" and rollback["version"] == 3
    assert "audit.jsonl: " in got[".venv/bin/selreload audit verify selreload-demo/audit.jsonl"]  # exit 0: no exit=
    shown = got[".venv/bin/selreload audit show selreload-demo/audit.jsonl --last 3"]
    assert 'logging.level: "info" -> "debug"  (apply)' in shown and "vNone" not in shown
    demo_out = (tmp_path / "demo.out").read_text()
    assert "Traceback" not in demo_out and 'logging.level  "info" -> "debug"' in demo_out
    assert "GET /metrics" not in demo_out  # no access log

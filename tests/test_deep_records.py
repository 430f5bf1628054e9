"""Records selreload writes and reads back, spoiled by whoever can write them: JSON nested
past the decoder's depth raised `RecursionError` out of `json.loads` (not a `ValueError`),
so one line of `[` appended to the audit log stopped `start()`, and blinded `verify_audit`
and `read_audit`. Each reader now takes it for what it is: not a record. (etcd's records:
`tests/fleet/test_etcd_hostile_records.py`.)"""

from __future__ import annotations

import io
import json
import pathlib
import subprocess
import sys

import httpx
import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._cli import main
from selreload._statedir import StateDir
from selreload.asgi import admin_app
from tests.conftest import write_atomic

DEEP = "[" * 100_000 + "]" * 100_000
SHAPES = {"deep array": DEEP, "deep object": '{"a":' * 100_000 + "1" + "}" * 100_000}
TOKEN = "t0ken-for-the-deep-tests"
ROOT = pathlib.Path(__file__).resolve().parent.parent


@sr.config
class App:
    level: str = sr.hot(default="info")


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def reloader(tmp_path: pathlib.Path, **kwargs: object) -> sr.Reloader[App]:
    cfg = tmp_path / "config.yaml"
    if not cfg.exists():
        write_atomic(cfg, "level: info\n")
    return sr.Reloader(App, [sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("line", SHAPES.values(), ids=SHAPES.keys())
def test_a_deep_line_in_the_audit_log_is_reported_not_raised(tmp_path: pathlib.Path, line: str) -> None:
    """start() still runs and chains its record after the last good one; `verify_audit`
    names the line as an edit, `read_audit` as not a record, the CLI in one line."""
    audit = tmp_path / "audit.jsonl"
    with reloader(tmp_path, audit=sr.AuditLog(audit)):
        pass
    with audit.open("a") as f:
        f.write(line + "\n")
    r = reloader(tmp_path, audit=sr.AuditLog(audit))
    with r:
        write_atomic(tmp_path / "config.yaml", "level: debug\n")
        assert r.reload().outcome is sr.Outcome.APPLIED
        assert r.status()["healthy"], r.status()
    report = sr.verify_audit(audit)
    assert not report.ok
    assert "line 2: not a JSON record: nested too deeply to be a record selreload wrote: an edit" in str(report)
    assert "line 3" not in str(report)  # the records after it follow the last good one
    with pytest.raises(ValueError, match=r"audit\.jsonl:2:1: not a JSON record: nested too deeply"):
        sr.read_audit(audit)
    code, out, err = cli("audit", "verify", str(audit))
    assert code != 0 and "line 2" in out + err and "Traceback" not in err, (code, out, err)
    code, out, err = cli("audit", "show", str(audit))
    assert "Traceback" not in err and "debug" in out, (code, out, err)


@pytest.mark.parametrize("name", ["overrides.json", "control.json", "workers/w9.json"])
def test_a_deep_state_file_is_no_record(tmp_path: pathlib.Path, name: str) -> None:
    """A deep overrides, command or worker file in the control directory reads as none:
    the worker starts, lists the others and takes an override."""
    state = tmp_path / "state"
    (state / "workers").mkdir(parents=True)
    (state / name).write_text(DEEP)
    r = reloader(tmp_path, state_dir=state, instance="w0")
    with r:
        assert r.current.level == "info"
        assert [w.instance for w in StateDir(state).workers().rows] == ["w0"]
        answer = r.workers.set({"level": "warning"}, actor="test")  # type: ignore[union-attr]
        assert answer.complete and [w.instance for w in answer.acked] == ["w0"], answer
        assert r.current.level == "warning"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_deep_overrides_request_is_a_400(tmp_path: pathlib.Path, anyio_backend: str) -> None:
    """POST /overrides with a body nested past the decoder's depth: 400, not a 500."""
    r = reloader(tmp_path, state_dir=tmp_path / "state", instance="w0")
    with r:
        transport = httpx.ASGITransport(app=admin_app(r, token=TOKEN), client=("127.0.0.1", 50123))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            for body in (*SHAPES.values(), b"\xff\xfe"):
                got = await c.post("/overrides", content=body, headers=headers)
                assert got.status_code == 400, got.text
                assert "error" in json.loads(got.text)
            good = await c.post("/overrides", json={"set": {"level": "debug"}}, headers=headers)
            assert good.status_code == 200, good.text
        assert r.current.level == "debug"


@pytest.mark.parametrize("value", ["[" * 100_000, "? " * 40_000 + "x", "- " * 101 + "x"], ids=["flow", "keys", "block"])
def test_a_deep_value_on_the_command_line_is_one_line(tmp_path: pathlib.Path, value: str) -> None:
    """`selreload set PATH=VALUE` reads VALUE as YAML with the depth check a file gets:
    before it, 100,000 `[` crashed the CLI (a segmentation fault in the C loader). In a
    child process, so that a crash fails this test only."""
    cmd = [sys.executable, "-m", "selreload", "set", f"level={value}", "--state-dir", str(tmp_path / "state")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1, (done.returncode, done.stderr[-500:])
    assert done.stderr == "selreload: error: level: too deeply nested: more than 100 levels\n"

"""The command line called in-process (`main(argv, out=, err=)`): outputs and exit codes."""

from __future__ import annotations

import io
import json
import pathlib

import pytest

import selreload as sr
from selreload import Change, Policy
from selreload._audit import audit_head
from selreload._cli import main

SCHEMA = """
import attrs
import selreload as sr

@sr.config
class Logging:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning", "error"]))

@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    logging: Logging = sr.field(factory=Logging)
    api_key: str = sr.secret(default="")
    feature_flags: dict[str, bool] = sr.hot(factory=dict)
"""

FILES = {
    "a.yaml": "port: 8080\nlogging:\n  level: info\napi_key: first-secret-value\n",
    "hot.yaml": "port: 8080\nlogging:\n  level: debug\napi_key: first-secret-value\n",
    "restart.yaml": "port: 9090\nlogging:\n  level: debug\napi_key: second-secret-value\n",
    "bad.yaml": "port: 9090\nlogging:\n  level: verbos\n  jsn: true\n",
}
S = ("--schema", "inproc_appcfg:App")


@pytest.fixture
def work(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    (tmp_path / "inproc_appcfg.py").write_text(SCHEMA)
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_check_valid_and_invalid(work: pathlib.Path) -> None:
    """check: exit 0 and "configuration OK" on stdout; an invalid file exits 1 with every
    error compiler-style on stderr."""
    code, out, err = run("check", "a.yaml", *S)
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "configuration OK (App: 4 leaves, 2 hot, 2 restart-only)"
    code, out, err = run("check", "bad.yaml", *S)
    assert (code, out) == (1, "")
    assert "bad.yaml:3:10: logging.level: must be one of" in err
    assert "logging.jsn" in err and err.splitlines()[-1] == "selreload: configuration check failed: 2 errors"


def test_usage_errors_and_help_come_back_as_exit_codes(work: pathlib.Path) -> None:
    """argparse's usage errors (exit 2) and --help (exit 0) are returned, written to err/out."""
    code, out, err = run("plan", "--from", "a.yaml", *S)
    assert code == 2 and out == "" and "the following arguments are required: --to" in err
    code, out, err = run("--help")
    assert code == 0 and out.startswith("usage: selreload") and err == ""


def test_plan_exit_codes_0_1_2(work: pathlib.Path) -> None:
    """plan: 0 for hot changes only (a table), 2 with restart-only changes, 1 for an invalid
    target; secrets never shown."""
    code, out, _ = run("plan", "--from", "a.yaml", "--to", "hot.yaml", *S)
    assert code == 0
    assert out.splitlines()[1].split() == ["logging.level", '"info"', '"debug"', "hot", "apply"]
    assert out.splitlines()[-1] == "1 to apply live, 0 rejected (restart required)"
    code, out, _ = run("plan", "--from", "a.yaml", "--to", "restart.yaml", *S)
    assert code == 2
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line}
    assert rows["api_key"][:5] == ["api_key", "***", "***", "restart_only", "(secret)"]
    assert rows["port"][-3:] == ["reject:", "restart", "required"] and "secret-value" not in out
    code, out, err = run("plan", "--from", "a.yaml", "--to", "bad.yaml", *S)
    assert code == 1 and out == "" and "--to bad.yaml is invalid: nothing would be applied" in err
    assert run("plan", "--from", "a.yaml", "--to", "a.yaml", *S)[:2] == (0, "no changes\n")


def test_plan_json_keeps_its_keys(work: pathlib.Path) -> None:
    """plan --json: each change has path, old, new, policy, secret, action, in that order."""
    code, out, _ = run("plan", "--from", "a.yaml", "--to", "restart.yaml", "--json", *S)
    assert code == 2
    plan = json.loads(out)
    assert plan["outcome"] == "applied" and plan["errors"] == []
    by_path = {c["path"]: c for c in plan["changes"]}
    assert list(by_path["logging.level"]) == ["path", "old", "new", "policy", "secret", "action"]
    assert by_path["api_key"] == {
        "path": "api_key",
        "old": "***",
        "new": "***",
        "policy": "restart_only",
        "secret": True,
        "action": "reject: restart required",
    }


def test_explain_and_policies(work: pathlib.Path) -> None:
    """explain: a table of value, policy and origin, secrets masked; a misspelt path is one
    line with a suggestion. policies: one row per leaf with its type."""
    code, out, _ = run("explain", "a.yaml", *S)
    assert code == 0 and out.splitlines()[0].split() == ["PATH", "VALUE", "POLICY", "ORIGIN"]
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["logging.level"] == ["logging.level", '"info"', "hot", "a.yaml:3:10"]
    assert rows["api_key"][1:3] == ["***", "restart_only,"] and "first-secret-value" not in out
    code, _, err = run("explain", "a.yaml", "loging.level", *S)
    assert (code, err) == (1, "selreload: error: no config field at 'loging.level'; did you mean 'logging.level'?\n")
    code, out, _ = run("policies", *S)
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["PATH", "TYPE", "POLICY", "SECRET"],
        ["port", "int", "restart_only"],
        ["logging.level", "str", "hot"],
        ["api_key", "str", "restart_only", "yes"],
        ["feature_flags.<key>", "dict[str,", "bool]", "hot"],
    ]


def test_schema_typo_suggests_the_class(work: pathlib.Path) -> None:
    """A misspelt class in --schema: one line naming the closest config class."""
    code, _, err = run("check", "a.yaml", "--schema", "inproc_appcfg:Ap")
    assert code == 1 and err.endswith("has no attribute 'Ap'; did you mean 'App'?\n")


def test_audit_verify_show_head(tmp_path: pathlib.Path) -> None:
    """audit verify (0 intact, 1 after an edit), show (one block per record, rejected
    changes as restart pending, secrets masked) and head (the last hash)."""
    path = tmp_path / "audit.jsonl"
    log = sr.AuditLog(path)
    changes = (Change("level", "info", "debug", Policy.HOT),)
    rejected = (Change("token", "a-secret", "b-secret", Policy.RESTART_ONLY, secret=True),)
    log.record(sr.ReloadResult(sr.Outcome.APPLIED, 1, applied=changes, trigger="start"), config="app", digest="d1")
    log.record(sr.ReloadResult(sr.Outcome.REJECTED, 1, rejected=rejected, actor="alice"), config="app", digest="d1")
    code, out, err = run("audit", "verify", str(path))
    assert (code, err) == (0, "") and out.startswith(f"{path}: ok: 2 records, chain intact")
    code, out, _ = run("audit", "show", str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("app v1  APPLIED  trigger=start")
    assert lines[1] == '    level: "info" -> "debug"  (apply)'
    assert lines[2].endswith("app v1  REJECTED  trigger=manual actor=alice")
    assert lines[3] == "    token: *** -> ***  (restart pending)" and "secret" not in out
    code, out, _ = run("audit", "head", str(path))
    assert (code, out) == (0, audit_head(path) + "\n")
    path.write_text(path.read_text().replace('"debug"', '"error"', 1))
    code, _, err = run("audit", "verify", str(path))
    assert code == 1 and "TAMPERED: the hash chain breaks at line 1" in err

"""The `selreload` command line, run through its real entry point (`python -m selreload`)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import pytest

import selreload as sr

SCHEMA = """
import datetime
import attrs
import selreload as sr

@sr.config
class Logging:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning", "error"]))
    json: bool = False

@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    logging: Logging = sr.field(factory=Logging)
    ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(hours=1))
    api_key: str = sr.secret(default="")
    feature_flags: dict[str, bool] = sr.hot(factory=dict)

NOT_A_CLASS = 3
"""

A = "port: 8080\nlogging:\n  level: info\napi_key: first-secret-value\n"
HOT_ONLY = "port: 8080\nlogging:\n  level: debug\napi_key: first-secret-value\nttl: 15m\nfeature_flags: {beta: true}\n"
RESTART = "port: 9090\nlogging:\n  level: debug\napi_key: second-secret-value\n"
BAD = "port: 9090\nlogging:\n  level: verbos\n  jsn: true\n"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("cli")
    (d / "appcfg.py").write_text(SCHEMA)
    for name, text in {"a.yaml": A, "hot.yaml": HOT_ONLY, "restart.yaml": RESTART, "bad.yaml": BAD}.items():
        (d / name).write_text(text)
    (d / "a.json").write_text(json.dumps({"port": 8080, "logging": {"level": "warning"}}))
    (d / "a.toml").write_text('port = 8080\n[logging]\nlevel = "error"\n')
    (d / "tighten.yaml").write_text("restart:\n  - logging.level\n")
    (d / "loosen.yaml").write_text("hot:\n  - api_key\n")
    return d


def selreload(work: pathlib.Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m selreload ARGS` in `work`, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "selreload", *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, **(env or {})),
    )


S = ("--schema", "appcfg:App")


# --- check --------------------------------------------------------------------------------


def test_check_valid_says_configuration_ok(work: pathlib.Path) -> None:
    """check on a valid file exits 0 with an nginx-style "configuration OK" line."""
    r = selreload(work, "check", "a.yaml", *S)
    assert r.returncode == 0, r.stderr
    assert "configuration OK (App: 6 leaves, 3 hot, 3 restart-only)" in r.stdout
    assert r.stderr == ""


def test_check_invalid_lists_every_error_compiler_style(work: pathlib.Path) -> None:
    """check on an invalid file exits 1 with every issue as file:line:col: path: message."""
    r = selreload(work, "check", "bad.yaml", *S)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert "bad.yaml:4:3: logging.jsn: unknown key; did you mean 'json'?" in lines
    assert "bad.yaml:3:10: logging.level: must be one of debug, info, warning, error (got 'verbos')" in lines
    assert lines[-1] == "selreload: configuration check failed: 2 errors"
    assert r.stdout == ""


def test_check_layers_json_toml_and_env(work: pathlib.Path) -> None:
    """check reads .json and .toml by extension and env vars with --env-prefix; an env error
    names its variable."""
    assert selreload(work, "check", "a.json", "a.toml", *S).returncode == 0
    r = selreload(work, "check", "a.yaml", "--env-prefix", "APP_", *S, env={"APP_LOGGING__LEVEL": "loud"})
    assert r.returncode == 1
    assert "env:APP_LOGGING__LEVEL: logging.level: must be one of" in r.stderr


def test_check_missing_file_is_one_clear_line(work: pathlib.Path) -> None:
    """A missing file: exit 1 and one line naming it, no traceback."""
    r = selreload(work, "check", "nope.yaml", *S)
    assert r.returncode == 1
    assert r.stderr == "selreload: error: nope.yaml: no such file\n"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nomodule:App", "--schema nomodule:App: no module named 'nomodule'"),
        ("appcfg:Ap", "--schema appcfg:Ap: module 'appcfg' has no attribute 'Ap'; did you mean 'App'?"),
        (
            "appcfg:NOT_A_CLASS",
            "--schema appcfg:NOT_A_CLASS: NOT_A_CLASS is not a config class (int); "
            "decorate it with @selreload.config, or pass a pydantic model",
        ),
    ],
)
def test_bad_schema_is_one_clear_line(work: pathlib.Path, spec: str, message: str) -> None:
    """A --schema that cannot be imported, lacks the attribute, or is not a config class:
    exit 1 with one line saying which."""
    r = selreload(work, "check", "a.yaml", "--schema", spec)
    assert r.returncode == 1
    assert r.stderr.startswith(f"selreload: error: {message}")
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1


def test_usage_errors_exit_2(work: pathlib.Path) -> None:
    """A malformed --schema (no colon), a missing required option or no command: argparse
    usage error, exit 2."""
    r = selreload(work, "check", "a.yaml", "--schema", "appcfg")
    assert r.returncode == 2 and "expected module:Class" in r.stderr
    assert selreload(work, "plan", "--from", "a.yaml", *S).returncode == 2
    assert selreload(work).returncode == 2


# --- plan ---------------------------------------------------------------------------------


def test_plan_hot_only_exits_0_with_a_table(work: pathlib.Path) -> None:
    """plan with only hot changes: exit 0, a table of path, old, new, policy, action."""
    r = selreload(work, "plan", "--from", "a.yaml", "--to", "hot.yaml", *S)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["PATH", "OLD", "NEW", "POLICY", "ACTION"]
    assert lines[1].split() == ["logging.level", '"info"', '"debug"', "hot", "apply"]
    assert lines[2].split() == ["ttl", '"1h"', '"15m"', "hot", "apply"]
    assert lines[3].split() == ["feature_flags.beta", "(absent)", "true", "hot", "apply"]
    assert lines[-1] == "3 to apply live, 0 rejected (restart required)"


def test_plan_restart_only_exits_2_and_masks_secrets(work: pathlib.Path) -> None:
    """plan with restart-only changes: exit 2, rejected rows say "reject: restart required",
    and secret values never appear."""
    r = selreload(work, "plan", "--from", "a.yaml", "--to", "restart.yaml", *S)
    assert r.returncode == 2, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:] if line}
    assert rows["port"].split() == ["port", "8080", "9090", "restart_only", "reject:", "restart", "required"]
    assert rows["api_key"].split()[:5] == ["api_key", "***", "***", "restart_only", "(secret)"]
    assert "secret-value" not in r.stdout + r.stderr


def test_plan_json(work: pathlib.Path) -> None:
    """plan --json: outcome, each change with old/new (secrets masked) and action."""
    r = selreload(work, "plan", "--from", "a.yaml", "--to", "restart.yaml", "--json", *S)
    assert r.returncode == 2
    plan = json.loads(r.stdout)
    assert plan["outcome"] == "applied" and plan["errors"] == []
    by_path = {c["path"]: c for c in plan["changes"]}
    assert by_path["logging.level"] == {
        "path": "logging.level",
        "old": "info",
        "new": "debug",
        "policy": "hot",
        "secret": False,
        "action": "apply",
    }
    assert by_path["api_key"]["old"] == by_path["api_key"]["new"] == "***"
    assert by_path["port"]["action"] == "reject: restart required"


def test_plan_no_changes_and_invalid(work: pathlib.Path) -> None:
    """plan to the same config: "no changes", exit 0; to an invalid one: its errors, exit 1."""
    same = selreload(work, "plan", "--from", "a.yaml", "--to", "a.yaml", *S)
    assert (same.returncode, same.stdout) == (0, "no changes\n")
    bad = selreload(work, "plan", "--from", "a.yaml", "--to", "bad.yaml", *S)
    assert bad.returncode == 1
    assert "bad.yaml:3:10: logging.level:" in bad.stderr
    assert "--to bad.yaml is invalid: nothing would be applied" in bad.stderr
    bad_from = selreload(work, "plan", "--from", "bad.yaml", "--to", "a.yaml", "--json", *S)
    assert bad_from.returncode == 1 and json.loads(bad_from.stdout)["outcome"] == "invalid"


# --- explain and policies ---------------------------------------------------------------------


def test_explain_value_origin_policy(work: pathlib.Path) -> None:
    """explain: each leaf's value, policy and origin (file:line:col, env var, default);
    secrets masked; a PATH narrows it; an unknown PATH is an error with a suggestion."""
    r = selreload(work, "explain", "a.yaml", "--env-prefix", "APP_", *S, env={"APP_TTL": "5m"})
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    assert rows["logging.level"] == ["logging.level", '"info"', "hot", "a.yaml:3:10"]
    assert rows["logging.json"] == ["logging.json", "false", "restart_only", "default"]
    assert rows["ttl"] == ["ttl", '"5m"', "hot", "env:APP_TTL"]
    assert rows["api_key"][1] == "***" and "first-secret-value" not in r.stdout
    narrow = selreload(work, "explain", "a.yaml", "logging", *S)
    assert [line.split()[0] for line in narrow.stdout.splitlines()] == ["PATH", "logging.level", "logging.json"]
    unknown = selreload(work, "explain", "a.yaml", "loging", *S)
    assert unknown.returncode == 1
    assert unknown.stderr == "selreload: error: no config field at 'loging'; did you mean 'logging'?\n"


def test_explain_invalid_config_exits_1(work: pathlib.Path) -> None:
    """explain of an invalid config lists its errors and exits 1."""
    r = selreload(work, "explain", "bad.yaml", *S)
    assert r.returncode == 1 and "bad.yaml:3:10: logging.level:" in r.stderr


def test_policies_table_and_policy_files(work: pathlib.Path) -> None:
    """policies: every leaf with type, policy and secrecy; a policy file tightens; one that
    would make a secret hot is refused (exit 1)."""
    r = selreload(work, "policies", *S)
    assert r.returncode == 0
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()}
    assert rows["PATH"] == ["PATH", "TYPE", "POLICY", "SECRET"]
    assert rows["logging.level"] == ["logging.level", "str", "hot"]
    assert rows["ttl"] == ["ttl", "timedelta", "hot"]
    assert rows["api_key"] == ["api_key", "str", "restart_only", "yes"]
    assert rows["feature_flags.<key>"] == ["feature_flags.<key>", "dict[str,", "bool]", "hot"]
    tight = selreload(work, "policies", "--policies", "tighten.yaml", *S)
    tightened = {line.split()[0]: line.split() for line in tight.stdout.splitlines()}
    assert tightened["logging.level"] == ["logging.level", "str", "restart_only"]
    loose = selreload(work, "policies", "--policies", "loosen.yaml", *S)
    assert loose.returncode == 1
    assert loose.stderr.startswith("selreload: error: loosen.yaml")
    assert "would make secret 'api_key' hot" in loose.stderr


# --- audit --------------------------------------------------------------------------------


@pytest.fixture
def audit_file(tmp_path: pathlib.Path) -> pathlib.Path:
    """A real audit log written by a Reloader: start, a hot change, an invalid file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("appcfg_for_audit", tmp_path / "appcfg.py")
    (tmp_path / "appcfg.py").write_text(SCHEMA)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(A)
    path = tmp_path / "audit.jsonl"
    from prometheus_client import CollectorRegistry

    # Not watched: the records come from the reload() calls only.
    reloader = sr.Reloader(
        module.App, [sr.YamlFile(cfg, watch=False)], audit=sr.AuditLog(path), registry=CollectorRegistry()
    )
    reloader.start()
    try:
        cfg.write_text(RESTART)
        reloader.reload(actor="alice")
        cfg.write_text(BAD)
        reloader.reload(actor="bob")
    finally:
        reloader.stop()
    return path


def test_audit_verify_ok_then_tampered(audit_file: pathlib.Path) -> None:
    """audit verify: exit 0 on an intact chain; after one edited record, exit 1 naming
    its line."""
    work = audit_file.parent
    ok = selreload(work, "audit", "verify", "audit.jsonl")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("audit.jsonl: ok: 3 records, chain intact")
    lines = audit_file.read_text().splitlines(keepends=True)
    record = json.loads(lines[1])
    assert record["actor"] == "alice"
    lines[1] = json.dumps(record | {"actor": "mallory"}) + "\n"
    audit_file.write_text("".join(lines))
    bad = selreload(work, "audit", "verify", "audit.jsonl")
    assert bad.returncode == 1
    assert bad.stderr.splitlines()[0] == "audit.jsonl:2: hash does not match the content: the record was edited"
    assert "TAMPERED" in bad.stderr


def test_audit_show(audit_file: pathlib.Path) -> None:
    """audit show: one block per record, restart-only changes as pending, secrets masked;
    --last N keeps the last N; --json prints the records."""
    work = audit_file.parent
    r = selreload(work, "audit", "show", "audit.jsonl")
    assert r.returncode == 0
    assert "APPLIED  trigger=manual actor=alice" in r.stdout
    assert "    port: 8080 -> 9090  (restart pending)" in r.stdout
    assert "    api_key: *** -> ***  (restart pending)" in r.stdout
    assert "secret-value" not in r.stdout
    last = selreload(work, "audit", "show", "audit.jsonl", "--last", "1")
    assert last.stdout.splitlines()[0].endswith("INVALID  trigger=manual actor=bob")
    assert "config.yaml:3:10: logging.level:" in last.stdout
    records = [
        json.loads(line) for line in selreload(work, "audit", "show", "audit.jsonl", "--json").stdout.splitlines()
    ]
    assert [r["outcome"] for r in records] == ["applied", "applied", "invalid"]


def test_audit_missing_file(tmp_path: pathlib.Path) -> None:
    """audit verify/show of a missing file: one line, exit 1."""
    for command in ("verify", "show"):
        r = selreload(tmp_path, "audit", command, "none.jsonl")
        assert (r.returncode, r.stderr) == (1, "selreload: error: none.jsonl: no such file\n")


# --- fleet and push (against real etcd in the fleet tests) ------------------------------------


def test_fleet_and_push_report_an_unreachable_etcd(work: pathlib.Path) -> None:
    """fleet status and push against a closed loopback port: exit 1 with one clear line."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens
    url = f"http://127.0.0.1:{port}"
    status = selreload(work, "fleet", "status", "--etcd", url, "--key", "/app/config", "--timeout", "1")
    assert status.returncode == 1
    assert status.stderr.startswith("selreload: error: fleet status: ")
    assert f"127.0.0.1:{port}" in status.stderr and len(status.stderr.splitlines()) == 1
    push = selreload(work, "push", "a.yaml", "--etcd", url, "--key", "/app/config", "--timeout", "1", *S)
    assert push.returncode == 1
    assert push.stderr.startswith("selreload: error: push: ")
    assert len(push.stderr.splitlines()) == 1


# --- the installed script -----------------------------------------------------------------


def test_console_script_runs_the_same_main(work: pathlib.Path) -> None:
    """The `selreload` console script (pyproject [project.scripts]) is the same CLI."""
    script = shutil.which("selreload", path=str(pathlib.Path(sys.executable).parent))
    assert script is not None, "the selreload console script is not installed in this venv"
    r = subprocess.run([script, "check", "a.yaml", *S], cwd=work, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "configuration OK" in r.stdout

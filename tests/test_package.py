"""What the distribution gives a newcomer: a cheap import, one-line errors for missing
extras, `--version`, shell completion and the shipped policy files."""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys

import pytest

import selreload
from selreload.__main__ import main

ROOT = pathlib.Path(__file__).parent.parent

# A finder that makes the optional dependencies look uninstalled, as after `pip install selreload`.
HIDE = """
import importlib.abc, sys
HIDDEN = {hidden!r}
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == h or name.startswith(h + ".") for h in HIDDEN):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Hide())
"""


def python(code: str, *, hidden: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *sys.path]))
    return subprocess.run(
        [sys.executable, "-c", HIDE.format(hidden=hidden) + code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_import_pulls_in_no_asyncio_http_server_or_prometheus() -> None:
    """`import selreload` loads under 150 modules and none of asyncio, http.server,
    prometheus_client, cattrs, ruamel, watchdog; a Reloader over files still needs no
    asyncio and no etcd client."""
    code = """
import sys, json
before = set(sys.modules)
import selreload
after = set(sys.modules)
import selreload as sr
sr.Reloader, sr.YamlFile, sr.Env, sr.config
print(json.dumps({"n": len(after), "new": sorted(after - before), "full": sorted(sys.modules)}))
"""
    found = json.loads(python(code).stdout)
    assert found["n"] < 150, found["n"]
    heavy = ("asyncio", "http.server", "prometheus_client", "cattrs", "ruamel", "watchdog", "opentelemetry")
    assert not [m for m in found["new"] if m.split(".")[0] in heavy or m in heavy]
    assert not [m for m in found["full"] if m == "asyncio" or m.startswith(("aetcd", "grpc", "selreload._etcd"))]


def test_lazy_names_are_the_same_objects_and_dir_lists_them() -> None:
    """A name loaded on first use is the module's own object, and `dir()` lists `__all__`."""
    from selreload._reloader import Reloader

    assert selreload.Reloader is Reloader
    assert set(selreload.__all__) <= set(dir(selreload))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        selreload.Nope  # noqa: B018


@pytest.mark.parametrize(
    ("code", "hidden", "feature", "extra"),
    [
        ("import selreload.asgi", ("starlette",), "selreload.asgi needs starlette", "http"),
        ("from selreload.appliers import Sampler", ("opentelemetry.sdk",), "appliers.Sampler needs", "otel"),
        (
            "import selreload as sr; sr.Etcd('http://127.0.0.1:1', '/k')",
            ("aetcd",),
            "needs aetcd",
            "etcd",
        ),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(code: str, hidden: tuple[str, ...], feature: str, extra: str) -> None:
    """Without an extra, using what needs it raises an ImportError whose last line names
    the package and the `pip install 'selreload[extra]'` that brings it."""
    r = python(code, hidden=hidden)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("selreload._package.MissingExtraError: ") and feature in last, r.stderr
    assert last.endswith(f"pip install 'selreload[{extra}]'")


def test_the_other_appliers_need_no_sdk() -> None:
    """`selreload.appliers.LogLevel` and friends import without the OpenTelemetry SDK."""
    r = python(
        "from selreload.appliers import FeatureFlags, JwtTtl, LogLevel; print('ok')", hidden=("opentelemetry.sdk",)
    )
    assert r.stdout.strip() == "ok", r.stderr


@pytest.mark.parametrize(
    ("argv", "hidden", "extra"),
    [
        (("demo", "--config", "x/c.yaml"), ("uvicorn",), "demo"),
        (("demo",), ("starlette",), "demo"),
        (("fleet", "status", "--etcd", "http://127.0.0.1:1", "--key", "/k"), ("aetcd",), "etcd"),
    ],
)
def test_cli_without_an_extra_is_one_line(argv: tuple[str, ...], hidden: tuple[str, ...], extra: str) -> None:
    """`selreload demo` or `fleet status` without its extra: exit 1, one `selreload: error:`
    line with the hint, no traceback."""
    r = python(f"import sys; from selreload.__main__ import main; sys.exit(main({list(argv)!r}))", hidden=hidden)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("selreload: error: "), r.stderr
    assert " needs " in r.stderr
    assert r.stderr.strip().endswith(f"pip install 'selreload[{extra}]'")


def test_version_and_help() -> None:
    """`--version` prints the installed version; `--help` lists every command."""
    from importlib.metadata import version

    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"selreload {version('selreload')}"
    code, out, _ = cli("--help")
    assert code == 0 and all(c in out for c in ("check", "plan", "demo", "completion", "--version"))


def test_a_bad_etcd_endpoint_is_a_usage_error_not_a_traceback() -> None:
    """`--etcd http://x:y` is refused while parsing, in one line (exit 2)."""
    code, _, err = cli("fleet", "status", "--etcd", "http://x:y", "--key", "/k")
    assert code == 2 and "Traceback" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .endswith(
            "argument --etcd: http://x:y: expected host:port, the port is not a number (expected http[s]://HOST:PORT[,HOST:PORT...])"
        )
    )


def test_policies_list_shows_the_files_shipped_in_the_package() -> None:
    """`selreload policies --list` prints each shipped policy file with a path that exists
    inside the package; without --list, --schema is required."""
    code, out, _ = cli("policies", "--list")
    assert code == 0
    rows = {line.split()[0]: line.split()[-1] for line in out.splitlines()[1:]}
    assert set(rows) == {"production-strict", "web-service"}
    for path in rows.values():
        assert (
            pathlib.Path(path).is_file() and pathlib.Path(path).parent.parent == pathlib.Path(selreload.__file__).parent
        )
    code, _, err = cli("policies")
    assert code == 1 and "--schema MODULE:CLASS is required" in err


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts(shell: str, tmp_path: pathlib.Path) -> None:
    """`selreload completion bash|zsh` prints a script bash accepts, which completes
    commands, subcommands and options."""
    code, out, _ = cli("completion", shell)
    assert code == 0 and "complete -o default -F _selreload_complete selreload" in out
    if shell == "zsh":
        assert out.startswith("autoload -U +X bashcompinit && bashcompinit")
        return
    script = tmp_path / "c.sh"
    script.write_text(out)

    def complete(*words: str) -> list[str]:
        probe = f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
        probe += '_selreload_complete; echo "${COMPREPLY[@]}"'
        return subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout.split()

    assert complete("selreload", "au") == ["audit"]
    assert complete("selreload", "audit", "") == ["verify", "show", "head", "--help"]
    assert complete("selreload", "check", "--sch") == ["--schema"]
    assert complete("selreload", "plan", "--from", "a.yaml", "--t") == ["--to"]

"""The wheel as users get it: built, installed from the package index into fresh venvs (no
extras, then `[all]`), and used there the way the README says; each extra's metadata."""

from __future__ import annotations

import email.parser
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import venv
import zipfile

import pytest
from test_docs import blocks

ROOT = pathlib.Path(__file__).parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# What an install from the index prints when it cannot reach it: then skip (fail under CI).
_OFFLINE = re.compile(r"NewConnectionError|Temporary failure in name resolution|No matching distribution found")


def run(
    *argv: str | pathlib.Path, cwd: pathlib.Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    # Nothing from this checkout or this interpreter: a venv sees only what it installed.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["NO_COLOR"] = "1"
    r = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=600, check=False
    )
    if check and r.returncode != 0:
        if _OFFLINE.search(r.stderr) and not os.environ.get("CI"):
            pytest.skip(f"the package index is not reachable: {r.stderr.strip().splitlines()[-1]}")
        raise AssertionError(f"{argv} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, ROOT)
    [built] = out.glob("selreload-*.whl")
    return built


def make_venv(where: pathlib.Path, requirement: str) -> pathlib.Path:
    venv.create(where, with_pip=True, clear=True)
    run(where / "bin" / "python", "-m", "pip", "install", "-q", requirement)
    return where / "bin"


@pytest.fixture(scope="module")
def bare(wheel: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A venv with `pip install selreload` (the wheel, dependencies from the index)."""
    return make_venv(tmp_path_factory.mktemp("bare"), str(wheel))


@pytest.fixture(scope="module")
def full(wheel: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A venv with `pip install 'selreload[all]'`."""
    return make_venv(tmp_path_factory.mktemp("all"), f"{wheel}[all]")


def metadata(wheel: pathlib.Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        [name] = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(z.read(name).decode())


def test_wheel_contents_and_metadata(wheel: pathlib.Path) -> None:
    """The wheel carries the policy files, py.typed and the LICENSE; its metadata says MIT
    and 3.11 to 3.13, depends on the OpenTelemetry API only, and each extra brings what its
    feature imports (`[demo]` uvicorn on top of `[http]`, `[all]` every one)."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert {"selreload/policies/web-service.yaml", "selreload/policies/production-strict.yaml"} <= set(names)
    assert "selreload/py.typed" in names and any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    meta = metadata(wheel)
    assert meta["License-Expression"] == "MIT" or meta["License"] == "MIT"
    classifiers = meta.get_all("Classifier") or []
    assert {f"Programming Language :: Python :: 3.{v}" for v in (11, 12, 13)} <= set(classifiers)
    requires = meta.get_all("Requires-Dist") or []
    core = [r for r in requires if "extra ==" not in r]
    assert any(r.startswith("opentelemetry-api") for r in core)
    assert not any(r.startswith("opentelemetry-sdk") for r in core)

    def extra(name: str) -> set[str]:  # distribution names (hatchling flattens `selreload[x]`)
        return {re.split(r"[<>=;\[ ]", r)[0] for r in requires if re.search(rf"extra == .{name}.$", r)}

    assert set(meta.get_all("Provides-Extra") or []) >= {"http", "otel", "etcd", "demo", "all"}
    assert extra("http") == {"starlette"}
    assert extra("otel") == {"opentelemetry-sdk"}
    assert extra("etcd") == {"aetcd"}
    assert extra("demo") == {"starlette", "opentelemetry-sdk", "uvicorn"}
    assert extra("fast") == {"rapidyaml"}
    assert not any(r.startswith("rapidyaml") for r in core)  # an extra: no source build on musl
    assert extra("all") == {
        "starlette",
        "opentelemetry-sdk",
        "uvicorn",
        "aetcd",
        "openfeature-sdk",
        "structlog",
        "loguru",
        "pydantic",
        "rapidyaml",
    }


def readme_example(where: pathlib.Path) -> pathlib.Path:
    """The README's files and Python blocks, in order, as one script in `where`."""
    code = []
    for _, kind, name, body in blocks((ROOT / "README.md").read_text(encoding="utf-8")):
        if kind == "file" and name:
            (where / name).write_text(body, encoding="utf-8")
        elif kind == "python":
            code.append(body)
    script = where / "readme.py"
    script.write_text("\n".join(code), encoding="utf-8")
    return script


def test_no_extras_runs_the_readme_and_the_cli(bare: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """With no extra: the README example prints what its comments say, `--version`,
    `--help` and `demo --help` work, the shipped policies are found inside the install, and
    whatever needs an extra says which, in one line."""
    out = run(bare / "python", readme_example(tmp_path), cwd=tmp_path).stdout.split()
    assert out == ["info", "debug", "8080", "['port']"]
    assert run(bare / "selreload", "--version").stdout.startswith("selreload 0.1")
    assert "completion" in run(bare / "selreload", "--help").stdout
    assert "--allow-remote" in run(bare / "selreload", "demo", "--help").stdout
    listed = run(bare / "selreload", "policies", "--list").stdout
    assert "site-packages/selreload/policies/web-service.yaml" in listed

    demo = run(bare / "selreload", "demo", cwd=tmp_path, check=False)
    assert demo.returncode == 1 and "Traceback" not in demo.stderr
    assert demo.stderr.strip().endswith("pip install 'selreload[demo]'")
    asgi = run(bare / "python", "-c", "import selreload.asgi", check=False)
    assert asgi.stderr.strip().splitlines()[-1] == (
        "selreload._package.MissingExtraError: selreload.asgi needs starlette, which is not installed:"
        " pip install 'selreload[http]'"
    )
    code = "import sys, selreload; print(len(sys.modules), 'asyncio' in sys.modules, 'http.server' in sys.modules)"
    count, has_asyncio, has_http = run(bare / "python", "-c", code).stdout.split()
    assert int(count) < 150 and has_asyncio == has_http == "False"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_all_extras_serve_the_demo(full: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """With `[all]`: the README example runs, the admin app, the Sampler and the etcd source
    import, and `selreload demo` serves GET /config until SIGINT."""
    out = run(full / "python", readme_example(tmp_path), cwd=tmp_path).stdout.split()
    assert out == ["info", "debug", "8080", "['port']"]
    code = "import selreload as sr, selreload.asgi; from selreload.appliers import Sampler"
    code += "; sr.Etcd('http://127.0.0.1:1', '/k'); import ryml"
    run(full / "python", "-c", code)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with open(tmp_path / "demo.err", "wb") as err:
        proc = subprocess.Popen(
            [full / "selreload", "demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            body = b""
            for _ in range(300):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as r:
                        body = r.read()
                    break
                except OSError:
                    assert proc.poll() is None, (tmp_path / "demo.err").read_text()
                    time.sleep(0.1)
            assert b'"version":1' in body
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0

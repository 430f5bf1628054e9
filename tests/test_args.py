"""Every argument of the public constructors and methods is checked where it is passed: a
wrong one is a TypeError or ValueError that names it (`YamlFile: max_bytes must be an
int, got nan`), never an AttributeError at start() or a silent misreading at every load.

Measured before: `Reloader(audit="audit.jsonl")` and `sources=["c.yaml"]` raised
AttributeError at start(); `YamlFile(max_bytes=nan)` reported every file as empty;
`required="no"` was true; `Etcd(ca_cert=1)` read, then closed, file descriptor 1 (stdout);
`subscribe(1)` logged a traceback at every reload.
"""

from __future__ import annotations

import contextlib
import math
import os
import pathlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import selreload as sr


@sr.config
class App:
    level: str = sr.hot(default="info")


@contextlib.contextmanager
def workdir() -> Iterator[pathlib.Path]:
    """A fresh directory, also the working directory: an accepted relative path lands there."""
    before = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        try:
            root = pathlib.Path(d)
            (root / "c.yaml").write_text("level: info\n")
            (root / "secrets").mkdir()
            yield root
        finally:
            os.chdir(before)


def yaml(**kw: Any) -> sr.YamlFile:
    return sr.YamlFile(kw.pop("path", "c.yaml"), **{"watch": False, **kw})


def reloader(*sources: Any, **kw: Any) -> sr.Reloader[App]:
    return sr.Reloader(App, list(sources) or [yaml()], registry=CollectorRegistry(), **kw)


# (what is built, the argument, the name its errors must carry)
FACTORIES: dict[str, tuple[Callable[[Any], Any], str]] = {
    "YamlFile.path": (lambda v: yaml(path=v), "YamlFile: path"),
    "YamlFile.required": (lambda v: yaml(required=v), "YamlFile: required"),
    "YamlFile.max_bytes": (lambda v: yaml(max_bytes=v), "YamlFile: max_bytes"),
    "YamlFile.max_nodes": (lambda v: yaml(max_nodes=v), "YamlFile: max_nodes"),
    "YamlFile.watch": (lambda v: sr.YamlFile("c.yaml", watch=v), "YamlFile: watch"),
    "YamlFile.quiet": (lambda v: yaml(quiet=v), "YamlFile: quiet"),
    "YamlFile.strict_modes": (lambda v: yaml(strict_modes=v), "YamlFile: strict_modes"),
    "JsonFile.max_bytes": (lambda v: sr.JsonFile("c.json", max_bytes=v, watch=False), "JsonFile: max_bytes"),
    "TomlFile.required": (lambda v: sr.TomlFile("c.toml", required=v, watch=False), "TomlFile: required"),
    "DotEnv.path": (lambda v: sr.DotEnv(v, watch=False), "DotEnv: path"),
    "DotEnv.prefix": (lambda v: sr.DotEnv(".env", prefix=v, watch=False), "DotEnv: prefix"),
    "DotEnv.interpolate": (lambda v: sr.DotEnv(".env", interpolate=v, watch=False), "DotEnv: interpolate"),
    "Env.prefix": (lambda v: sr.Env(prefix=v, watch=False), "Env: prefix"),
    "Env.environ": (lambda v: sr.Env(environ=v, watch=False), "Env: environ"),
    "Env.ignore": (lambda v: sr.Env(ignore=v, watch=False), "Env: ignore"),
    "Env.file_suffix": (lambda v: sr.Env(file_suffix=v, watch=False), "Env: file_suffix"),
    "SecretsDir.path": (lambda v: sr.SecretsDir(v, watch=False), "SecretsDir: path"),
    "SecretsDir.prefix": (lambda v: sr.SecretsDir("secrets", prefix=v, watch=False), "SecretsDir: prefix"),
    "AuditLog.path": (lambda v: sr.AuditLog(v), "AuditLog: path"),
    "AuditLog.fsync": (lambda v: sr.AuditLog("a.jsonl", fsync=v), "AuditLog: fsync"),
    "AuditLog.denial_window": (lambda v: sr.AuditLog("a.jsonl", denial_window=v), "AuditLog: denial_window"),
    "Reloader.name": (lambda v: reloader(name=v), "Reloader: name"),
    "Reloader.history": (lambda v: reloader(history=v), "Reloader: history"),
    "Reloader.strict": (lambda v: reloader(strict=v), "Reloader: strict"),
    "Reloader.applier_timeout": (lambda v: reloader(applier_timeout=v), "Reloader: applier_timeout"),
    "Reloader.on_audit_failure": (lambda v: reloader(on_audit_failure=v), "Reloader: on_audit_failure"),
    "Reloader.sources": (lambda v: sr.Reloader(App, v, registry=CollectorRegistry()), "Reloader: sources"),
    "Reloader.audit": (lambda v: reloader(audit=v), "Reloader: audit"),
    "Reloader.registry": (lambda v: sr.Reloader(App, [yaml()], registry=v), "Reloader: registry"),
    "Reloader.tracer_provider": (lambda v: reloader(tracer_provider=v), "Reloader: tracer_provider"),
    "Reloader.recorders": (lambda v: reloader(recorders=v), "Reloader: recorders"),
    "Reloader.mask": (lambda v: reloader(mask=v), "Reloader: mask"),
    "Reloader.loop": (lambda v: reloader(loop=v), "Reloader: loop"),
    "Reloader.instance": (lambda v: reloader(instance=v), "Reloader: instance"),
    "Reloader.policies": (lambda v: reloader(policies=v), "Reloader: policies"),
}

# A sample of each kind of wrong value; the property test below draws from all kinds.
WRONG: dict[str, list[Any]] = {
    "YamlFile.path": [1, None, b"c.yaml", "", "c\x00.yaml"],
    "YamlFile.required": ["no", 0, 1, None],
    "YamlFile.max_bytes": [math.nan, 1.5, "4M", True, 0, -1, None],
    "YamlFile.max_nodes": [math.inf, "10", False, 0],
    "YamlFile.watch": ["nope", "", None, 0, 1],
    "YamlFile.quiet": [-1, math.nan, math.inf, 1e308, "0.1", True, None],
    "YamlFile.strict_modes": ["yes", 1],
    "JsonFile.max_bytes": [math.nan, -5],
    "TomlFile.required": ["false"],
    "DotEnv.path": [3, ""],
    "DotEnv.prefix": [None, 7, "A\nB"],
    "DotEnv.interpolate": ["off"],
    "Env.prefix": ["", None, b"APP_", "APP\n", "APP\x1b"],
    "Env.environ": [1, ["APP_X=1"], "APP_X=1"],
    "Env.ignore": ["APP_ENV", 5, [5]],
    "Env.file_suffix": [1, "_F\nX"],
    "SecretsDir.path": [None, "", 2],
    "SecretsDir.prefix": [None, "a\tb"],
    "AuditLog.path": [1, b"a.jsonl", "", "a\x00b"],
    "AuditLog.fsync": ["no", 0],
    "AuditLog.denial_window": [-1, math.nan, "1", None],
    "Reloader.name": ["", 1, "a\nb", "\x1b[2J"],
    "Reloader.history": [-1, 1.5, True, "10", 2**63],
    "Reloader.strict": ["no", 1],
    "Reloader.applier_timeout": [-1, 0, math.nan, math.inf, 1e308, "5", True],
    "Reloader.on_audit_failure": ["ignore", None, True],
    "Reloader.sources": ["c.yaml", ["c.yaml"], 1, [1]],
    "Reloader.audit": ["audit.jsonl", pathlib.Path("audit.jsonl"), 1],
    "Reloader.registry": [1, "registry"],
    "Reloader.tracer_provider": [1, "otel"],
    "Reloader.recorders": [1, [1], [print]],
    "Reloader.mask": [1, ["password"]],
    "Reloader.loop": [1, "loop"],
    "Reloader.instance": ["", "   ", 1, "web\n1", "web\x00"],
    "Reloader.policies": [1, [1], [None]],
}


@pytest.mark.parametrize(
    ("case", "value"), [(case, value) for case, values in WRONG.items() for value in values], ids=repr
)
def test_a_wrong_argument_is_refused_where_it_is_passed(case: str, value: Any) -> None:
    """TypeError or ValueError at construction, naming the class and the argument."""
    make, where = FACTORIES[case]
    with workdir(), pytest.raises((TypeError, ValueError)) as info:
        make(value)
    assert str(info.value).startswith(where), str(info.value)
    assert "\n" not in str(info.value)


ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
    st.just(pathlib.Path("c.yaml")),
    st.just(print),
)


def _works(made: Any) -> None:
    """What an accepted value must allow: a start and a reload that end in a result."""
    if isinstance(made, sr.Reloader):
        r = made
    elif isinstance(made, sr.AuditLog):
        r = reloader(audit=made)
    else:
        r = reloader(made)
    try:
        r.start()
    except sr.ConfigError:
        return  # an accepted path that names no file: a clear error, which is the contract
    try:
        assert isinstance(r.reload(), sr.ReloadResult)
    finally:
        r.stop()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(sorted(FACTORIES)), value=ANYTHING)
def test_any_value_is_refused_by_name_or_works(case: str, value: Any) -> None:
    """For every argument and any value: refused at construction, naming the argument, or
    accepted and then start() and reload() end in a defined outcome (or a ConfigError)."""
    make, where = FACTORIES[case]
    with workdir():
        try:
            made = make(value)
        except (TypeError, ValueError) as exc:
            assert str(exc).startswith(where), str(exc)
            return
        except sr.PolicyError as exc:  # a path to a file that is not a policy: its place named
            assert case == "Reloader.policies" and str(exc).startswith(os.fspath(value)), str(exc)
            return
        _works(made)


def test_etcd_arguments_are_checked_before_anything_connects() -> None:
    """Every argument of `Etcd` is refused by name; an int CA bundle is no longer opened as
    a file descriptor (1 was stdout: read, then closed)."""
    pytest.importorskip("aetcd")
    base: dict[str, Any] = {"endpoints": "127.0.0.1:2379", "key": "app"}
    wrong = {
        "key": ["", 1, "a\nb"],
        "instance": ["x\ny", 5],
        "status_prefix": ["\x1b"],
        "lease_ttl": [0, 1.5, True],
        "timeout": [0, -1, math.nan, "5"],
        "max_bytes": [0, math.nan],
        "max_nodes": [-1],
        "rollouts": ["yes"],
        "overrides": [1],
        "health": [1, lambda x: True],
        "health_interval": [0, math.inf],
    }
    for arg, values in wrong.items():
        for value in values:
            with pytest.raises((TypeError, ValueError), match=f"^Etcd: {arg} "):
                sr.Etcd(**{**base, arg: value})
    for arg in ("ca_cert", "client_cert", "user", "server_name"):
        with pytest.raises(TypeError, match=f"^etcd: {arg} "):
            tls = {"endpoints": "https://127.0.0.1:2379", "client_key": "k", "client_cert": "c"}
            sr.Etcd(**{**base, **tls, arg: 1})
    with pytest.raises(TypeError, match="^etcd: password must be a str, got a value of type int$"):
        sr.Etcd(**base, user="u", password=1)
    os.fstat(1)  # stdout is still open


def test_methods_check_their_arguments(tmp_path: pathlib.Path) -> None:
    """on(), subscribe(), reload(), rollback() and request_reload() refuse what cannot
    work when it is passed, with the method and the argument in the message."""
    (tmp_path / "c.yaml").write_text("level: info\n")
    r = reloader(yaml(path=tmp_path / "c.yaml"))

    def two(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        pass

    for path in (1, None, "level\n"):
        with pytest.raises((TypeError, ValueError), match="^on\\(\\): path "):
            r.on(path, two)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="^on\\(\\): applier .* cannot be called as applier\\(changes, snapshot\\)"):
        r.on("level", lambda: None)

    class OneArgApply:
        def apply(self, changes: Sequence[sr.Change]) -> None: ...
        def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None: ...

    with pytest.raises(TypeError, match="^on\\(\\): apply .* cannot be called as apply\\(changes, snapshot\\)"):
        r.on("level", OneArgApply())
    with pytest.raises(TypeError, match="^subscribe\\(\\): callback must be callable"):
        r.subscribe(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^subscribe\\(\\): callback .* cannot be called as callback\\(result\\)"):
        r.subscribe(two)  # type: ignore[arg-type]
    r.on("level", two)  # the right shapes are taken
    r.subscribe(lambda result: None)
    with r:
        for kw in ({"trigger": 1}, {"trigger": ""}, {"trigger": "a\nb"}, {"actor": 5}, {"actor": "x\x1b[31m"}):
            with pytest.raises((TypeError, ValueError), match="^reload\\(\\): (trigger|actor) "):
                r.reload(**kw)
        with pytest.raises(ValueError, match="^rollback\\(\\): actor "):
            r.rollback(1, actor="alice\nbob")
        for version in (True, 1.0, None):
            with pytest.raises(TypeError, match="a version is an int or a digest"):
                r.rollback(version)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="^request_reload\\(\\): trigger "):
            r.request_reload("a\nb")
        assert r.reload(trigger="deploy-42", actor="alice@example.com").outcome is sr.Outcome.UNCHANGED
        assert r.rollback(1, actor="alice").outcome is sr.Outcome.UNCHANGED

"""Layering: later layers win, mappings deep-merge, the seed layout works, and every leaf's
origin is the layer (and line:col) it actually came from."""

from __future__ import annotations

import datetime
import pathlib

import attrs
import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._layers import merge, origin_of, origins
from selreload._typing import Layer


@sr.config
class Logging:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning", "error"]))
    json: bool = False


@sr.config
class Auth:
    jwt_ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(hours=24))
    jwt_secret: str = sr.secret(default="")


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    logging: Logging = sr.field(factory=Logging)
    auth: Auth = sr.field(factory=Auth)
    feature_flags: dict[str, bool] = sr.hot(factory=dict)
    hosts: list[str] = sr.hot(factory=list)


def _seed(tmp_path: pathlib.Path, *, local: str | None = None) -> pathlib.Path:
    config = tmp_path / "config"
    config.mkdir()
    (config / "default.yaml").write_text(
        "port: 8080\nlogging:\n  level: info\n  json: true\nfeature_flags:\n  a: true\n  b: true\nhosts: [x, y]\n"
    )
    (config / "production.yaml").write_text("logging:\n  level: warning\nfeature_flags:\n  b: false\nhosts: [z]\n")
    if local is not None:
        (config / "local.yaml").write_text(local)
    return config


def _start(sources: list[sr.sources.YamlFile | sr.Env] | list[object]) -> sr.Reloader[App]:
    reloader = sr.Reloader(App, sources, registry=CollectorRegistry())  # type: ignore[arg-type]
    reloader.start()
    return reloader


def test_merge_later_wins_and_mappings_deep_merge() -> None:
    """Later layers win per leaf; mappings merge key by key; lists are replaced whole."""
    out = merge([{"a": {"x": 1, "y": 2}, "l": [1, 2]}, None, {"a": {"y": 3}, "l": [9]}])
    assert out == {"a": {"x": 1, "y": 3}, "l": [9]}


def test_seed_layout(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """default.yaml < {APP_ENV}.yaml < local.yaml < APP_ vars, deep-merged; APP_ENV is not a setting."""
    config = _seed(tmp_path, local="feature_flags:\n  c: true\n")
    monkeypatch.chdir(tmp_path)
    for name in [k for k in __import__("os").environ if k.startswith("APP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("APP_LOGGING__LEVEL", "error")
    monkeypatch.setenv("APP_FEATURE_FLAGS__NEW_CHECKOUT", "1")
    sources = sr.layered("config", watch=False)
    assert [s.name for s in sources] == [
        "config/default.yaml",
        "config/production.yaml",
        "config/local.yaml",
        "env:APP_*",
    ]
    cfg = _start(sources).current  # type: ignore[arg-type]
    assert cfg.port == 8080
    assert cfg.logging == Logging(level="error", json=True)
    assert cfg.feature_flags == {"a": True, "b": False, "c": True, "new_checkout": True}
    assert cfg.hosts == ["z"]
    assert config.is_dir()


def test_seed_layout_without_local_or_env(tmp_path: pathlib.Path) -> None:
    """No APP_ENV and no local.yaml: just default.yaml (the optional layer is absent, not an error)."""
    _seed(tmp_path)
    sources = sr.layered(tmp_path / "config", environ={}, watch=False)
    assert len(sources) == 3
    assert _start(sources).current.logging.level == "info"  # type: ignore[arg-type]


def test_missing_environment_file_is_an_error(tmp_path: pathlib.Path) -> None:
    """APP_ENV naming a file that does not exist fails fast (a typo'd environment)."""
    _seed(tmp_path)
    with pytest.raises(sr.ConfigError, match=r"prodution\.yaml: required config file is missing"):
        _start(sr.layered(tmp_path / "config", environ={"APP_ENV": "prodution"}, watch=False))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["../secrets", "a/b", ".hidden", "x y"])
def test_environment_name_must_be_plain(tmp_path: pathlib.Path, name: str) -> None:
    """An environment name cannot reach outside the config directory."""
    with pytest.raises(ValueError, match="not a plain environment name"):
        sr.layered(tmp_path, env=name)


def test_origins_file_line_col_env_and_default(tmp_path: pathlib.Path) -> None:
    """snapshot.origins gives file:line:col for file values, env:VAR for env, default otherwise."""
    config = _seed(tmp_path)
    env = {"APP_ENV": "production", "APP_AUTH__JWT_TTL": "15m"}
    reloader = _start(sr.layered(config, environ=env, watch=False))  # type: ignore[arg-type]
    assert reloader.snapshot is not None
    got = dict(reloader.snapshot.origins)
    d, p = f"{config}/default.yaml", f"{config}/production.yaml"
    assert got == {
        "port": f"{d}:1:7",
        "logging.level": f"{p}:2:10",
        "logging.json": f"{d}:4:9",
        "auth.jwt_ttl": "env:APP_AUTH__JWT_TTL",
        "auth.jwt_secret": "default",
        "feature_flags.a": f"{d}:6:6",
        "feature_flags.b": f"{p}:4:6",
        "hosts": f"{p}:5:8",
    }


def test_default_leaf_under_a_section_from_a_file(tmp_path: pathlib.Path) -> None:
    """A leaf the file does not set is `default` even when its section is in the file."""
    path = tmp_path / "c.yaml"
    path.write_text("logging:\n  level: debug\n")
    reloader = _start([sr.YamlFile(path, watch=False)])
    assert reloader.snapshot is not None
    assert reloader.snapshot.origins["logging.json"] == "default"
    assert reloader.snapshot.origins["logging.level"] == f"{path}:2:10"


def test_origins_json_and_toml(tmp_path: pathlib.Path) -> None:
    """JSON and TOML values get file:line:col too (TOML from a line scanner)."""
    j = tmp_path / "a.json"
    j.write_text('{\n  "port": 1,\n  "logging": {"level": "debug"}\n}\n')
    t = tmp_path / "b.toml"
    t.write_text('[feature_flags]\nx = true\n\n[auth]\njwt_ttl = "5m"\n')
    reloader = _start([sr.JsonFile(j, watch=False), sr.TomlFile(t, watch=False)])
    assert reloader.snapshot is not None
    o = reloader.snapshot.origins
    assert o["port"] == f"{j}:2:11"
    assert o["logging.level"] == f"{j}:3:24"
    assert o["feature_flags.x"] == f"{t}:2:5"
    assert o["auth.jwt_ttl"] == f"{t}:5:11"


def test_origin_of_a_mapping_replaced_by_env_json() -> None:
    """An env var holding JSON replaces the whole mapping: its keys come from the variable,
    even where a lower layer had the same key."""
    low = Layer("a.yaml", {"feature_flags": {"x": True}}, "1", lambda: {"feature_flags.x": "a.yaml:2:6"})
    env = sr.Env("APP_", {"APP_FEATURE_FLAGS": '{"x": false}'}).load()
    assert origins(["feature_flags.x"], [low, env]) == {"feature_flags.x": "env:APP_FEATURE_FLAGS"}


def test_missing_key_is_placed_at_its_parent() -> None:
    """An issue about a key no layer holds points at its nearest parent that a layer holds."""
    layer = Layer("a.yaml", {"logging": {"level": "x"}}, "1", lambda: {"logging": "a.yaml:1:1"})
    assert origin_of("logging.json", [layer]) == "a.yaml:1:1"
    assert origin_of("port", [layer]) == "default"


def test_error_points_at_the_layer_that_won(tmp_path: pathlib.Path) -> None:
    """A bad value set in a higher layer is reported there, not where it was overridden."""
    config = _seed(tmp_path)
    (config / "production.yaml").write_text("logging:\n  level: verbos\n")
    with pytest.raises(sr.ConfigError) as info:
        _start(sr.layered(config, environ={"APP_ENV": "production"}, watch=False))  # type: ignore[arg-type]
    assert str(info.value) == (
        f"{config}/production.yaml:2:10: logging.level: must be one of debug, info, warning, error (got 'verbos')"
    )


def test_issues_are_listed_in_layer_then_file_order(tmp_path: pathlib.Path) -> None:
    """Like a compiler: issues by layer, then line and column, env variables last."""
    config = _seed(tmp_path)
    (config / "default.yaml").write_text("port: x\nlogging:\n  json: 1\n  level: loud\n")
    (config / "production.yaml").write_text("hosts: 1\nextra: 2\n")
    env = {"APP_ENV": "production", "APP_PORT": "eighty"}
    with pytest.raises(sr.ConfigError) as info:
        _start(sr.layered(config, environ=env, watch=False))  # type: ignore[arg-type]
    d, p = f"{config}/default.yaml", f"{config}/production.yaml"
    assert [line.split(": ")[0] for line in str(info.value).splitlines()] == [
        f"{d}:3:9",
        f"{d}:4:10",
        f"{p}:1:8",
        f"{p}:2:1",  # an unknown key: at the key
        "env:APP_PORT",
    ]


def test_reload_reparses_only_changed_layers(tmp_path: pathlib.Path) -> None:
    """A reload reuses the Layer of every file whose bytes did not change."""
    config = _seed(tmp_path)
    sources = sr.layered(config, environ={"APP_ENV": "production"}, watch=False)
    before = [s.load() for s in sources]
    (config / "production.yaml").write_text("logging:\n  level: debug\n")
    after = [s.load() for s in sources]
    assert after[0] is before[0]
    assert after[1] is not before[1]
    assert after[3] is before[3]


def test_history_snapshots_keep_text_not_trees(tmp_path: pathlib.Path) -> None:
    """A snapshot in history keeps its layers' text, not the layer (and its parsed tree):
    the layer a reload read is freed once the source reads the next one, and the old
    snapshot's origins are still placed from the text it kept."""
    import gc
    import weakref

    path = tmp_path / "config.yaml"
    path.write_text("logging:\n  level: debug\n")
    source = sr.YamlFile(path, watch=False)
    reloader = sr.Reloader(App, sources=[source], registry=CollectorRegistry(), history=5)
    with reloader:
        path.write_text("logging:\n  level: warning\n")
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        read = weakref.ref(source.load())  # the layer behind v2 (the same bytes: no parse)
        path.write_text("\n\nlogging:\n    level: error\n")
        assert reloader.reload().outcome is sr.Outcome.APPLIED
        gc.collect()
        assert read() is None
        v2 = next(s for s in reloader.history if s.version == 2)
        assert v2.origins["logging.level"] == f"{path}:2:10"
        assert reloader.snapshot.origins["logging.level"] == f"{path}:4:12"
        assert v2.origins["port"] == "default"

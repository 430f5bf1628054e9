"""`sr.Env`: `__` nesting, lowercased keys, values parsed by the field's type, named errors."""

from __future__ import annotations

import datetime
import pathlib

import attrs
import pytest
from prometheus_client import CollectorRegistry

import selreload as sr


@sr.config
class Logging:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning", "error"]))
    json: bool = sr.hot(default=False)


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    ratio: float = sr.hot(default=0.5)
    timeout: datetime.timedelta = sr.hot(default=datetime.timedelta(seconds=30))
    logging: Logging = sr.field(factory=Logging)
    feature_flags: dict[str, bool] = sr.hot(factory=dict)
    hosts: list[str] = sr.hot(factory=list)
    token: str = sr.secret(default="")
    pin: int = sr.secret(default=0)


def _load(env: dict[str, str], prefix: str = "APP_") -> App:
    return sr.Reloader(App, [sr.Env(prefix, env)], registry=CollectorRegistry()).start().config  # type: ignore[no-any-return]


def _errors(env: dict[str, str]) -> str:
    with pytest.raises(sr.ConfigError) as info:
        _load(env)
    return str(info.value)


def test_double_underscore_nests_and_keys_are_lowercased() -> None:
    """`APP_LOGGING__LEVEL` sets logging.level; `APP_FEATURE_FLAGS__NEW_CHECKOUT` a mapping key."""
    cfg = _load({"APP_LOGGING__LEVEL": "debug", "APP_FEATURE_FLAGS__NEW_CHECKOUT": "true", "OTHER": "x"})
    assert cfg.logging.level == "debug"
    assert cfg.feature_flags == {"new_checkout": True}


@pytest.mark.parametrize(("text", "value"), [("true", True), ("false", False), ("1", True), ("0", False)])
def test_bool_from_text(text: str, value: bool) -> None:
    """A bool field takes true/false/1/0 from env."""
    assert _load({"APP_LOGGING__JSON": text}).logging.json is value


def test_numbers_durations_and_json() -> None:
    """Each value is parsed by its field's type: int, float, duration, JSON list and mapping."""
    cfg = _load(
        {
            "APP_PORT": "9090",
            "APP_RATIO": "0.25",
            "APP_TIMEOUT": "1h30m",
            "APP_HOSTS": '["a", "b"]',
            "APP_FEATURE_FLAGS": '{"x": true, "y": false}',
        }
    )
    assert (cfg.port, cfg.ratio, cfg.timeout) == (9090, 0.25, datetime.timedelta(hours=1, minutes=30))
    assert cfg.hosts == ["a", "b"]
    assert cfg.feature_flags == {"x": True, "y": False}


def test_strings_are_never_guessed() -> None:
    """A str field keeps `"123"` and `"true"` as text; nothing is coerced."""
    cfg = _load({"APP_LOGGING__LEVEL": "info", "APP_TOKEN": "123"})
    assert cfg.token == "123"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"APP_PORT": "eighty"}, "env:APP_PORT: port: expected an int, got text 'eighty'"),
        ({"APP_LOGGING__JSON": "yes please"}, "env:APP_LOGGING__JSON: logging.json: expected a bool (true/false/1/0)"),
        ({"APP_HOSTS": "a,b"}, "env:APP_HOSTS: hosts: expected a list as JSON text, got invalid JSON"),
        ({"APP_LOGGING__LEVEL": "verbos"}, "env:APP_LOGGING__LEVEL: logging.level: must be one of debug, info"),
    ],
)
def test_bad_value_names_the_variable(env: dict[str, str], needle: str) -> None:
    """A value that does not parse as its field's type is an error whose origin is the variable."""
    assert needle in _errors(env)


def test_unknown_variable_is_an_error_naming_it() -> None:
    """A variable under the prefix that matches no field is an unknown key, with a suggestion."""
    text = _errors({"APP_LOGING__LEVEL": "debug"})
    assert "env:APP_LOGING__LEVEL: loging: unknown key; did you mean 'logging'?" in text


def test_secret_from_env_is_masked_in_errors() -> None:
    """A bad secret value from env is never quoted in the error."""
    text = _errors({"APP_PIN": "hunter2"})
    assert "env:APP_PIN: pin: expected an int, got text ***" in text
    assert "hunter2" not in text


def test_conflicting_variables() -> None:
    """`APP_LOGGING` and `APP_LOGGING__LEVEL` both set one subtree: an error naming both."""
    text = _errors({"APP_LOGGING": '{"level": "info"}', "APP_LOGGING__LEVEL": "debug"})
    assert "env:APP_LOGGING__LEVEL: logging: set by both APP_LOGGING and APP_LOGGING__LEVEL" in text


def test_empty_segment() -> None:
    """`APP_LOGGING____LEVEL` cannot name a setting."""
    assert "env:APP_LOGGING____LEVEL: cannot name a setting" in _errors({"APP_LOGGING____LEVEL": "x"})


def test_ignore_and_prefix() -> None:
    """Ignored names are skipped; only the exact, case-sensitive prefix is read."""
    env = {"APP_ENV": "production", "app_port": "1", "MYAPP_PORT": "2", "APP_PORT": "3"}
    layer = sr.Env("APP_", env, ignore=["APP_ENV"]).load()
    assert layer.tree == {"port": "3"}
    assert layer.locate() == {"port": "env:APP_PORT"}


def test_no_variables_is_an_absent_layer() -> None:
    """No variable under the prefix: the layer holds nothing and the defaults stand."""
    assert sr.Env("APP_", {"PATH": "/bin"}).load().tree is None
    assert _load({}).port == 8080


def test_unchanged_environment_returns_the_same_layer() -> None:
    """Same variables, same layer object (no rebuild); a changed value gives a new digest."""
    env = {"APP_PORT": "1"}
    source = sr.Env("APP_", env)
    first = source.load()
    assert source.load() is first
    env["APP_PORT"] = "2"
    assert source.load().digest != first.digest


def test_env_is_read_at_every_reload(tmp_path: pathlib.Path) -> None:
    """A reload sees the environment as it is now, and origins name the variable."""
    env = {"APP_LOGGING__LEVEL": "info"}
    reloader = sr.Reloader(App, [sr.Env("APP_", env)], registry=CollectorRegistry())
    reloader.start()
    env["APP_LOGGING__LEVEL"] = "warning"
    assert reloader.reload().outcome is sr.Outcome.APPLIED
    assert reloader.current.logging.level == "warning"
    assert reloader.snapshot is not None
    assert reloader.snapshot.origins["logging.level"] == "env:APP_LOGGING__LEVEL"
    assert reloader.snapshot.origins["port"] == "default"


def test_env_has_no_watcher() -> None:
    """A process's environment does not change from outside: `watch` returns None."""
    assert sr.Env().watch(lambda trigger: None) is None

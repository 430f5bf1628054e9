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


# What the kubelet injects for services `myapp` and `myapp-db` in the pod's namespace.
SERVICE_LINKS = {
    "MYAPP_SERVICE_HOST": "10.96.0.12",
    "MYAPP_SERVICE_PORT": "8080",
    "MYAPP_SERVICE_PORT_HTTP": "8080",
    "MYAPP_PORT": "tcp://10.96.0.12:8080",
    "MYAPP_PORT_8080_TCP": "tcp://10.96.0.12:8080",
    "MYAPP_PORT_8080_TCP_PROTO": "tcp",
    "MYAPP_PORT_8080_TCP_PORT": "8080",
    "MYAPP_PORT_8080_TCP_ADDR": "10.96.0.12",
    "MYAPP_DB_SERVICE_HOST": "fd00::12",
    "MYAPP_DB_SERVICE_PORT": "5432",
    "MYAPP_DB_PORT": "tcp://[fd00::12]:5432",
    "MYAPP_DB_PORT_5432_TCP": "tcp://[fd00::12]:5432",
    "MYAPP_DB_PORT_5432_TCP_PROTO": "tcp",
    "MYAPP_DB_PORT_5432_TCP_PORT": "5432",
    "MYAPP_DB_PORT_5432_TCP_ADDR": "fd00::12",
}


def test_kubernetes_service_links_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """Service links under the prefix are skipped, `MYAPP_PORT=tcp://...` included; logged once."""
    env = {**SERVICE_LINKS, "MYAPP_LOGGING__LEVEL": "debug"}
    reloader = sr.Reloader(App, [sr.Env("MYAPP_", env)], registry=CollectorRegistry())
    with caplog.at_level("INFO", logger="selreload.env"):
        reloader.start()
        env["MYAPP_LOGGING__LEVEL"] = "warning"
        assert reloader.reload().outcome is sr.Outcome.APPLIED
    assert (reloader.current.port, reloader.current.logging.level) == (8080, "warning")
    lines = [r.getMessage() for r in caplog.records if r.name == "selreload.env"]
    assert len(lines) == 1, lines
    assert "ignoring 15 Kubernetes service-link variable(s)" in lines[0]
    assert "MYAPP_PORT, MYAPP_PORT_8080_TCP" in lines[0] and "MYAPP_DB_SERVICE_HOST" in lines[0]


def test_a_service_link_needs_its_service_host() -> None:
    """`MYAPP_PORT=tcp://...` without `MYAPP_SERVICE_HOST` is a setting (and here a bad one)."""
    with pytest.raises(sr.ConfigError, match="env:MYAPP_PORT: port: expected an int, got text 'tcp://"):
        _load({"MYAPP_PORT": "tcp://10.96.0.12:8080"}, prefix="MYAPP_")


def test_a_setting_shaped_unlike_a_link_is_read() -> None:
    """A variable named like a link but not shaped like one is a setting: `MYAPP_PORT=9090` sets port."""
    assert _load({**SERVICE_LINKS, "MYAPP_PORT": "9090"}, prefix="MYAPP_").port == 9090


def test_service_links_read_on_request() -> None:
    """`service_links="read"` reads them like any variable: today's unknown-key errors."""
    source = sr.Env("MYAPP_", SERVICE_LINKS, service_links="read")
    with pytest.raises(sr.ConfigError, match="env:MYAPP_SERVICE_HOST: service_host: unknown key"):
        sr.Reloader(App, [source], registry=CollectorRegistry()).start()
    with pytest.raises(ValueError, match="Env: service_links must be one of 'ignore', 'read', got 'skip'"):
        sr.Env("MYAPP_", service_links="skip")  # type: ignore[arg-type]


def test_unknown_variables_are_still_errors() -> None:
    """Besides service links, a variable under the prefix that matches no field is refused."""
    with pytest.raises(sr.ConfigError, match="env:MYAPP_LOGING__LEVEL: loging: unknown key; did you mean 'logging'"):
        _load({**SERVICE_LINKS, "MYAPP_LOGING__LEVEL": "debug"}, prefix="MYAPP_")


def test_variable_name_that_is_not_text() -> None:
    """A variable name with an undecodable byte (a lone surrogate in `os.environ`) is refused, escaped."""
    with pytest.raises(sr.ConfigError) as info:
        _load({"APP_X\udcff": "1"})
    assert str(info.value) == "env:APP_X\\udcff: cannot name a setting: the variable name is not valid text"


def test_hostile_env_values_name_the_variable() -> None:
    """Non-finite, huge, negative and deep values from env are refused naming their variable."""
    text = _errors({"APP_RATIO": "inf", "APP_TIMEOUT": "-5m", "APP_PORT": "9" * 5000, "APP_HOSTS": "[" * 3000})
    assert "env:APP_RATIO: ratio: expected a finite number" in text
    assert "env:APP_TIMEOUT: timeout: a duration cannot be negative" in text
    assert "env:APP_PORT: port: integer too long: 5,000 digits" in text
    assert "env:APP_HOSTS: hosts: expected a list as JSON text, too deeply nested" in text

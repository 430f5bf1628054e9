"""pydantic models as the schema: policies, strict structuring, placed errors, secrets, validators, reloads."""

from __future__ import annotations

import datetime
import io
import json
import os
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import pytest
from prometheus_client import CollectorRegistry
from pydantic import AliasPath, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel

import selreload as sr
from selreload._cli import main
from selreload._mask import masked_plain
from selreload._pydantic import json_schema


class Logging(BaseModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    json_lines: Annotated[bool, sr.RestartOnly] = False


class Workers(BaseModel):
    low: Annotated[int, sr.Hot, Field(ge=1)] = 1
    high: int = 8  # restart-only: no policy on the way up

    @model_validator(mode="after")
    def _ordered(self) -> Workers:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class Auth(BaseModel):
    jwt_ttl: Annotated[datetime.timedelta, sr.Hot] = datetime.timedelta(hours=24)
    api_token: SecretStr = SecretStr("")
    rotating: Annotated[SecretStr, sr.Hot] = SecretStr("")
    signing_key: Annotated[str, sr.Secret(hot=True)] = ""
    password: Annotated[str, sr.Secret()] = ""

    @field_validator("password")
    @classmethod
    def _long(cls, value: str) -> str:
        if value and len(value) < 8:
            raise ValueError(f"password {value!r} is too short")
        return value


class App(BaseModel):
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    logging: Annotated[Logging, sr.Hot] = Logging()  # a node policy: its leaves inherit it
    workers: Workers = Workers()
    auth: Auth = Auth()
    feature_flags: dict[str, bool] = Field(default_factory=dict, json_schema_extra={"selreload": "hot"})
    tags: Annotated[list[str], sr.Hot] = []


GOOD = """\
port: 8080
logging: {level: info}
workers: {low: 2, high: 8}
auth: {jwt_ttl: 24h, api_token: first-api-token, rotating: first-rotating, password: first-password}
feature_flags: {checkout: false}
"""


class Started:
    def __init__(self, reloader: sr.Reloader[App], path: pathlib.Path) -> None:
        self.reloader, self.path = reloader, path

    def reload(self, text: str) -> sr.ReloadResult:
        self.path.write_text(text, encoding="utf-8")
        return self.reloader.reload()


@pytest.fixture
def live(tmp_path: pathlib.Path) -> Iterator[Started]:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD, encoding="utf-8")
    env = {"APP_PORT": "9000", "APP_LOGGING__JSON_LINES": "true"}
    audit = sr.AuditLog(tmp_path / "audit.jsonl")
    sources = [sr.YamlFile(path, watch=False), sr.Env(prefix="APP_", environ=env)]
    reloader = sr.Reloader(App, sources, audit=audit, registry=CollectorRegistry())
    with reloader:
        yield Started(reloader, path)


def test_policies_come_from_markers_field_extra_nodes_and_secret_types() -> None:
    """Markers, `json_schema_extra`, a node marker inherited by its leaves; none: restart-only; SecretStr: secret."""
    leaves = sr.Reloader(App).schema.leaves
    got = {p: (leaf.policy.value, leaf.secret) for p, leaf in leaves.items()}
    assert got == {
        "port": ("restart_only", False),
        "logging.level": ("hot", False),
        "logging.json_lines": ("restart_only", False),
        "workers.low": ("hot", False),
        "workers.high": ("restart_only", False),
        "auth.jwt_ttl": ("hot", False),
        "auth.api_token": ("restart_only", True),
        "auth.rotating": ("hot", True),
        "auth.signing_key": ("hot", True),
        "auth.password": ("restart_only", True),
        "feature_flags": ("hot", False),
        "tags": ("hot", False),
    }
    assert leaves["feature_flags"].mapping


def test_policy_files_work_unchanged() -> None:
    """A policy file tightens a pydantic leaf, and may not loosen a declared secret."""
    tight = sr.Reloader(App, policies=sr.PolicySet(restart=("logging.*",))).schema
    assert tight.leaves["logging.level"].policy is sr.Policy.RESTART_ONLY
    with pytest.raises(sr.PolicyError, match="secret"):
        sr.Reloader(App, policies=sr.PolicySet(hot=("auth.api_token",)))


def test_a_bad_policy_word_is_refused_at_build() -> None:
    """`json_schema_extra={"selreload": "hott"}` is a TypeError naming the field, not a silent default."""

    class Bad(BaseModel):
        x: int = Field(default=1, json_schema_extra={"selreload": "hott"})

    with pytest.raises(TypeError, match=r"Bad\.x.*'hott'"):
        sr.Reloader(Bad)


def test_import_selreload_does_not_import_pydantic() -> None:
    """`import selreload` (markers included) leaves pydantic unimported."""
    code = "import sys, selreload as sr; sr.Hot, sr.Secret(hot=True); print('pydantic' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"


def test_start_reads_file_and_env_text_by_the_field_type(live: Started) -> None:
    """Env text "9000" is an int, "15m"-style durations parse, `current` is the model instance, frozen."""
    cfg = live.reloader.current
    assert isinstance(cfg, App)
    assert (cfg.port, cfg.logging.json_lines, cfg.auth.jwt_ttl) == (9000, True, datetime.timedelta(hours=24))
    assert cfg.auth.api_token.get_secret_value() == "first-api-token"
    with pytest.raises(Exception, match="frozen"):
        cfg.port = 1
    with pytest.raises(TypeError, match="immutable"):
        cfg.feature_flags["checkout"] = True  # type: ignore[index]


def test_hot_changes_apply_per_leaf_and_per_key_restart_only_is_rejected(live: Started) -> None:
    """Hot leaves and mapping keys apply; the restart-only and secret leaves are rejected, audited, pending."""
    seen: list[list[str]] = []
    live.reloader.on("feature_flags", lambda changes, _snap: seen.append([c.path for c in changes]))
    text = (
        GOOD.replace("level: info", "level: debug")
        .replace("checkout: false", "checkout: true, beta: true")
        .replace("first-api-token", "second-api-token")
        .replace("json_lines", "json_lines")
        .replace("high: 8}", "high: 8}\ntags: [a]")
    )
    result = live.reload(text)
    assert result.outcome is sr.Outcome.APPLIED, result
    # Mapping keys come in key order (equal mappings flatten and digest alike).
    assert [c.path for c in result.applied] == ["logging.level", "feature_flags.beta", "feature_flags.checkout", "tags"]
    assert [c.path for c in result.rejected] == ["auth.api_token"]
    assert seen[-1] == ["feature_flags.beta", "feature_flags.checkout"]
    cfg = live.reloader.current
    assert cfg.logging.level == "debug" and cfg.feature_flags == {"checkout": True, "beta": True}
    assert cfg.auth.api_token.get_secret_value() == "first-api-token"
    assert live.reloader.status()["restart_pending"] == ["auth.api_token"]


def test_strict_types_and_every_error_placed_with_its_origin(live: Started) -> None:
    """`"false"` is not a bool, `"2"` not an int, unknown keys get "did you mean"; every issue at file:line:col."""
    text = textwrap.dedent(
        """\
        port: 8080
        logging: {level: verbose}
        workers: {low: "2", hihg: 9}
        feature_flags: {checkout: "false", beta: 1}
        """
    )
    result = live.reload(text)
    assert result.outcome is sr.Outcome.INVALID
    lines = [str(e).replace(str(live.path), "F") for e in result.errors]
    assert lines == [
        "F:2:18: logging.level: must be one of debug, info, warning, error (got 'verbose')",
        "F:3:16: workers.low: expected an int, got str '2'",
        "F:3:21: workers.hihg: unknown key; did you mean 'high'?",
        "F:4:27: feature_flags.checkout: expected a bool, got str 'false'",
        "F:4:42: feature_flags.beta: expected a bool, got int 1",
    ]
    assert live.reloader.snapshot.version == 1


def test_pydantic_constraints_and_env_origins(tmp_path: pathlib.Path) -> None:
    """A `Field(ge=...)` failure is pydantic's words with the value, placed at `env:APP_PORT`."""
    path = tmp_path / "c.yaml"
    path.write_text("workers: {low: 0}\n", encoding="utf-8")
    sources = [sr.YamlFile(path, watch=False), sr.Env(prefix="APP_", environ={"APP_PORT": "70000"})]
    with pytest.raises(sr.ConfigError) as info:
        sr.Reloader(App, sources, registry=CollectorRegistry()).start()
    lines = [str(e).replace(str(path), "F") for e in info.value.issues]
    assert lines == [
        "F:1:16: workers.low: input should be greater than or equal to 1 (got 0)",
        "env:APP_PORT: port: input should be less than or equal to 65535 (got 70000)",
    ]


def test_model_validator_runs_on_the_effective_config(live: Started) -> None:
    """A hot `low` above the live restart-only `high` is INVALID: the cross-field rule holds on what goes live."""
    result = live.reload(GOOD.replace("low: 2, high: 8", "low: 12, high: 20"))
    assert result.outcome is sr.Outcome.INVALID
    assert "low (12) must not exceed high (8)" in str(result.errors[0])
    assert live.reloader.current.workers.low == 2


def test_secrets_never_shown(live: Started, tmp_path: pathlib.Path) -> None:
    """repr, errors (a validator quoting the value, a type error on a secret), audit, masked config: no secret."""
    cfg = live.reloader.current
    assert "first-api-token" not in repr(cfg) and "first-password" not in repr(cfg)
    assert "api_token=***" in repr(cfg)
    bad = GOOD.replace("first-password", "short").replace("first-rotating", "[1, 2]")
    result = live.reload(bad)
    text = "\n".join(str(e) for e in result.errors)
    assert result.outcome is sr.Outcome.INVALID
    assert "auth.password: invalid value (the validator's message is withheld: the value is secret)" in text
    assert "auth.rotating:" in text and "short" not in text and "[1, 2]" not in text
    live.reload(GOOD.replace("first-api-token", "second-api-token").replace("level: info", "level: debug"))
    audit = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    plain = json.dumps(masked_plain(live.reloader.current, schema=live.reloader.schema))
    for secret in ("first-api-token", "second-api-token", "first-password", "first-rotating"):
        assert secret not in audit and secret not in plain and secret not in str(live.reloader.plan())


def test_a_new_secret_value_is_a_new_digest(live: Started) -> None:
    """SecretStr renders as `****`; the digest still sees a rotated secret."""
    before = live.reloader.snapshot.digest
    result = live.reload(GOOD.replace("first-rotating", "second-rotating"))
    assert [c.path for c in result.applied] == ["auth.rotating"]
    assert live.reloader.snapshot.digest != before
    assert live.reloader.current.auth.rotating.get_secret_value() == "second-rotating"


def test_failed_applier_rolls_back_and_rollback_restores(live: Started) -> None:
    """An applier failure leaves the old model live; `rollback(version)` goes back through the same rules."""
    calls: list[str] = []

    def level(changes: list[sr.Change], _snap: Any) -> None:
        calls.append(changes[0].new)

    def boom(changes: list[sr.Change], _snap: Any) -> None:
        if changes[0].new is True:
            raise RuntimeError("flag store down")

    live.reloader.on("logging.level", level)
    live.reloader.on("feature_flags", boom)
    failed = live.reload(GOOD.replace("level: info", "level: debug").replace("checkout: false", "checkout: true"))
    assert failed.outcome is sr.Outcome.ROLLED_BACK
    assert calls[-2:] == ["debug", "info"] and live.reloader.current.logging.level == "info"
    assert live.reload(GOOD.replace("level: info", "level: warning")).outcome is sr.Outcome.APPLIED
    back = live.reloader.rollback(1)
    assert back.outcome is sr.Outcome.APPLIED and live.reloader.current.logging.level == "info"


def test_json_schema_comes_from_pydantic_with_policies() -> None:
    """pydantic's own JSON Schema, each leaf marked with its policy, secrets marked and without defaults."""
    schema = json_schema(sr.Reloader(App).schema)
    props = schema["properties"]
    assert props["port"]["maximum"] == 65535 and props["port"]["x-selreload-policy"] == "restart_only"
    auth = schema["$defs"]["Auth"]["properties"]
    assert auth["api_token"]["x-selreload-secret"] is True and "default" not in auth["api_token"]
    assert schema["$defs"]["Logging"]["properties"]["level"]["x-selreload-policy"] == "hot"
    assert schema["additionalProperties"] is False


def test_cli_check_takes_a_pydantic_schema(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`selreload check --schema mod:Model` validates a file against a pydantic model."""
    (tmp_path / "pyd_appcfg.py").write_text(
        "from typing import Annotated\nfrom pydantic import BaseModel\nimport selreload as sr\n\n"
        "class Cfg(BaseModel):\n    level: Annotated[str, sr.Hot] = 'info'\n    port: int = 8080\n",
        encoding="utf-8",
    )
    (tmp_path / "good.yaml").write_text("level: debug\nport: 80\n", encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("level: debug\nport: '80'\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", "--schema", "pyd_appcfg:Cfg", "good.yaml"], out=out, err=err) == 0
    assert main(["check", "--schema", "pyd_appcfg:Cfg", "bad.yaml"], out=out, err=err) == 1
    assert "bad.yaml:2:7: port: expected an int, got str '80'" in out.getvalue() + err.getvalue()


def test_the_admin_app_serves_a_pydantic_config_masked(live: Started) -> None:
    """The admin app over a real HTTP client: `GET /config` of a pydantic model with secrets
    (`SecretStr`, a name rule) masked, `POST /reload` applying a hot change, `GET /explain`
    with origins and policies, and the JSON Schema from pydantic's own."""
    import asyncio

    import httpx

    from selreload.asgi import admin_app

    app = admin_app(live.reloader, token="t0k3n")
    auth = {"Authorization": "Bearer t0k3n"}

    async def main() -> None:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            body = (await http.get("/config")).json()
            text = str(body)
            assert "first-api-token" not in text and "first-rotating" not in text and "first-password" not in text
            assert body["config"]["auth"]["api_token"] == "***" and body["config"]["port"] == 9000
            live.path.write_text(GOOD.replace("level: info", "level: debug"), encoding="utf-8")
            result = (await http.post("/reload", headers=auth)).json()
            assert result["outcome"] == "applied" and live.reloader.current.logging.level == "debug"
            rows = (await http.get("/explain", headers=auth)).json()
            assert "first-api-token" not in str(rows)

    asyncio.run(main())
    schema = sr.json_schema(App)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "first-api-token" not in str(schema)


# --- aliases: the document's keys are the paths ------------------------------------------------


class Server(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    log_level: Annotated[Literal["debug", "info", "warning"], sr.Hot] = "info"
    max_conns: Annotated[int, Field(ge=1)] = 10  # restart-only: no policy on the way up


class Aliased(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_: Annotated[str, sr.Hot, Field(alias="schema")] = "public"  # `schema` is a pydantic v1 method
    from_: Annotated[str, sr.Hot, Field(validation_alias="from")] = "a"
    server: Server = Field(default_factory=Server, alias="serverConfig")
    flags: Annotated[dict[str, bool], sr.Hot] = Field(default_factory=dict, alias="feature-flags")
    api_key: SecretStr = Field(SecretStr(""), alias="apiKey")


ALIASED = """\
schema: app
from: b
serverConfig:
  logLevel: info
  maxConns: 10
feature-flags: {checkout: false}
apiKey: first-key
"""


@pytest.fixture
def aliased(tmp_path: pathlib.Path) -> Iterator[Started]:
    path = tmp_path / "config.yaml"
    path.write_text(ALIASED, encoding="utf-8")
    audit = sr.AuditLog(tmp_path / "audit.jsonl")
    reloader = sr.Reloader(Aliased, [sr.YamlFile(path, watch=False)], audit=audit, registry=CollectorRegistry())
    with reloader:
        yield Started(reloader, path)


def test_a_document_with_alias_keys_loads(aliased: Started) -> None:
    """Alias keys (`alias`, `validation_alias`, an `alias_generator`) are the document's keys;
    the model reads as usual, and answers to its keys too (selreload reads nodes by key)."""
    cfg = aliased.reloader.current
    assert (cfg.schema_, cfg.from_, cfg.server.log_level, cfg.flags) == ("app", "b", "info", {"checkout": False})
    assert cfg.api_key.get_secret_value() == "first-key"
    server = getattr(cfg, "serverConfig")  # noqa: B009 - a key property, made at run time
    assert server.maxConns == 10 and getattr(cfg, "feature-flags") == {"checkout": False}
    assert sorted(aliased.reloader.schema.leaves) == [
        "apiKey",
        "feature-flags",
        "from",
        "schema",
        "serverConfig.logLevel",
        "serverConfig.maxConns",
    ]


def test_an_aliased_hot_change_applies_under_the_key_the_user_typed(aliased: Started) -> None:
    """A change of an aliased hot leaf (and of a key of an aliased mapping) is applied and
    reported, routed and audited with the path as the document writes it."""
    seen: list[str] = []
    aliased.reloader.on("serverConfig.logLevel", lambda changes, _snap: seen.extend(c.path for c in changes))
    seen.clear()  # registered on a started Reloader: called once with the live value
    text = ALIASED.replace("logLevel: info", "logLevel: debug").replace("checkout: false", "checkout: true")
    result = aliased.reload(text.replace("schema: app", "schema: other"))
    assert result.outcome is sr.Outcome.APPLIED, result
    assert [c.path for c in result.applied] == ["schema", "serverConfig.logLevel", "feature-flags.checkout"]
    assert seen == ["serverConfig.logLevel"]
    cfg = aliased.reloader.current
    assert (cfg.schema_, cfg.server.log_level, cfg.flags) == ("other", "debug", {"checkout": True})
    record = sr.read_audit(aliased.path.parent / "audit.jsonl")[-1]
    assert [c["path"] for c in record["changes"]] == ["schema", "serverConfig.logLevel", "feature-flags.checkout"]


def test_an_aliased_restart_only_change_is_rejected_by_its_key(aliased: Started) -> None:
    """Restart-only aliased leaves (and an aliased secret) are rejected and pending under their keys."""
    result = aliased.reload(ALIASED.replace("maxConns: 10", "maxConns: 20").replace("first-key", "second-key"))
    assert result.outcome is sr.Outcome.REJECTED, result
    assert [c.path for c in result.rejected] == ["serverConfig.maxConns", "apiKey"]
    assert sorted(aliased.reloader.status()["restart_pending"]) == ["apiKey", "serverConfig.maxConns"]
    assert aliased.reloader.current.server.max_conns == 10


def test_errors_name_the_aliased_key_at_its_position(aliased: Started) -> None:
    """Type, constraint and unknown-key errors under aliases name the key typed, at file:line:col;
    the Python field name is an unknown key where the model does not populate by name."""
    text = textwrap.dedent(
        """\
        schema: app
        serverConfig:
          logLevel: verbose
          maxConns: 0
          log_level: info
        feature-flags: {checkout: "no"}
        """
    )
    result = aliased.reload(text)
    assert result.outcome is sr.Outcome.INVALID
    lines = [str(e).replace(str(aliased.path), "F") for e in result.errors]
    assert lines == [
        "F:3:13: serverConfig.logLevel: must be one of debug, info, warning (got 'verbose')",
        "F:4:13: serverConfig.maxConns: input should be greater than or equal to 1 (got 0)",
        "F:5:3: serverConfig.log_level: unknown key; did you mean 'logLevel'?",
        "F:6:27: feature-flags.checkout: expected a bool, got str 'no'",
    ]


def test_populate_by_name_accepts_the_field_name_once(aliased: Started) -> None:
    """Under `populate_by_name`, a document may use the field name for an aliased field; the
    path stays the alias; naming one field twice is an error at the second key."""
    result = aliased.reload(ALIASED.replace("schema: app", "schema_: other"))
    assert result.outcome is sr.Outcome.APPLIED, result
    assert [c.path for c in result.applied] == ["schema"]
    result = aliased.reload(ALIASED + "schema_: again\n")
    assert result.outcome is sr.Outcome.INVALID
    assert [f"{e.path}: {e.message}" for e in result.errors] == [
        "schema_: the same field as 'schema': give one of them"
    ]


def test_policy_files_and_the_json_schema_use_the_aliases(tmp_path: pathlib.Path) -> None:
    """Policy globs match alias paths, and the JSON Schema (`selreload schema`) has the
    document's keys as properties, each leaf with its policy."""
    reloader = sr.Reloader(Aliased, policies=[sr.PolicySet(restart=("serverConfig.logLevel",))])
    assert reloader.schema.policy_of("serverConfig.logLevel")[0] is sr.Policy.RESTART_ONLY
    schema = json_schema(sr.Reloader(Aliased).schema)
    assert sorted(schema["properties"]) == ["apiKey", "feature-flags", "from", "schema", "serverConfig"]
    assert schema["properties"]["schema"]["x-selreload-policy"] == "hot"
    assert schema["properties"]["apiKey"]["x-selreload-secret"] is True
    server = schema["$defs"]["Server"]["properties"]
    assert server["logLevel"]["x-selreload-policy"] == "hot"
    assert server["maxConns"]["x-selreload-policy"] == "restart_only"
    (tmp_path / "pyd_aliased.py").write_text(
        "from pydantic import BaseModel, ConfigDict\nfrom pydantic.alias_generators import to_camel\n\n"
        "class Cfg(BaseModel):\n    model_config = ConfigDict(alias_generator=to_camel)\n    log_level: str = 'info'\n",
        encoding="utf-8",
    )
    out = io.StringIO()
    sys.path.insert(0, str(tmp_path))
    try:
        assert main(["schema", "--schema", "pyd_aliased:Cfg"], out=out, err=io.StringIO()) == 0
    finally:
        sys.path.remove(str(tmp_path))
    assert list(json.loads(out.getvalue())["properties"]) == ["logLevel"]


def test_aliases_selreload_cannot_read_are_refused_at_build() -> None:
    """A nested `AliasPath`, a key two fields share, or a key that is an attribute of the
    class: a TypeError when the Reloader is built, naming the field."""

    class Nested(BaseModel):
        level: str = Field("info", validation_alias=AliasPath("logging", "level"))

    class Shared(BaseModel):
        model_config = ConfigDict(populate_by_name=True)
        a: int = Field(0, alias="b")
        b: int = 0

    class Clash(BaseModel):
        fields: int = Field(0, alias="model_dump")

    for model, words in ((Nested, "nested path"), (Shared, "both read the document key 'b'"), (Clash, "attribute")):
        with pytest.raises(TypeError, match=words):
            sr.Reloader(model)

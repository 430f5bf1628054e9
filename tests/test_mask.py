"""The one masking policy: every rendering of a secret is `***`, by one rule."""

from __future__ import annotations

import datetime
from typing import Any

import attrs

import selreload as sr
from selreload._mask import MASK, Guard, guard, masked_plain, plain, render, show
from selreload._schema import PolicySet, Schema
from selreload._values import UNSET, EnvText


@sr.config
class Db:
    host: str = "db"
    password: str = sr.secret(default="hunter2")


@sr.config
class App:
    db: Db = sr.field(factory=Db)
    flags: dict[str, str] = sr.hot(factory=dict)
    dbs: dict[str, Db] = sr.hot(factory=dict)
    ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(minutes=15))


def test_render() -> None:
    """People see JSON (`"info"`, `"15m"`, `true`, `null`); a secret is `***`; UNSET is
    `(absent)`, even for a secret (it reveals nothing)."""
    assert render("info", secret=False) == '"info"'
    assert render(True, secret=False) == "true" and render(None, secret=False) == "null"
    assert render({"a": [1, 2.5]}, secret=False) == '{"a": [1, 2.5]}'
    assert render("postgresql://app:hunter2@db/app", secret=False) == '"postgresql://app:***@db/app"'
    assert render(datetime.timedelta(minutes=15), secret=False) == '"15m"'
    assert render("hunter2", secret=True) == MASK
    assert render(UNSET, secret=True) == "(absent)"
    assert repr(sr.Change("db.password", "a", "b", secret=True)) == "Change('db.password', *** -> ***, hot)"


def test_repr_of_a_secret_field_is_masked() -> None:
    """The attrs repr of a config never shows a secret."""
    assert repr(Db()) == "Db(host='db', password=***)"


def test_show_masks_and_cuts() -> None:
    """Error messages quote raw values masked, env text as text, and cut long ones."""
    assert show("hunter2", secret=True) == MASK
    assert show(EnvText("x"), secret=False) == "'x'"
    assert len(show("y" * 500, secret=False)) == 80


def test_guard_withholds_whole_never_edits() -> None:
    """A message quoting a secret is replaced whole; one that does not is shown as written."""
    g = Guard(["abc", 42])
    err = ValueError("bad abc")
    assert g.text("bad abc", what="the validator failed", exc=err) == (
        "the validator failed (ValueError); its message is withheld because it quotes a secret"
    )
    assert g.text("bad value", what="x", exc=err) == "bad value"
    assert g.failure("applier a failed", RuntimeError("got 42")).endswith("withheld because it quotes a secret")
    assert g.failure("applier a failed", RuntimeError("boom")) == "applier a failed: RuntimeError: boom"
    assert not Guard([True, None, ""]).quotes_secret("True None ''")


def test_plain() -> None:
    """One leaf as JSON: UNSET is null, a secret `***`, secrets nested in a value masked too."""
    assert plain(UNSET, secret=True) is None
    assert plain("hunter2", secret=True) == MASK
    assert plain(3, secret=False) == 3
    assert plain(Db(), secret=False) == {"host": "db", "password": MASK}


def test_masked_plain_masks_every_kind_of_secret() -> None:
    """Declared secrets, secrets inside mapping values and policy-file secret keys are all masked."""
    schema = Schema(App, policies=[PolicySet(secret=("flags.api_*",))])
    cfg = App(flags={"api_key": "k-123", "color": "blue"}, dbs={"main": Db(password="pw-9")})
    assert masked_plain(cfg, schema=schema) == {
        "db": {"host": "db", "password": MASK},
        "flags": {"api_key": MASK, "color": "blue"},
        "dbs": {"main": {"host": "db", "password": MASK}},
        "ttl": "15m",
    }
    assert masked_plain(cfg)["db"]["password"] == MASK  # no schema: declared secrets still masked


def test_guard_collects_secrets_on_first_use() -> None:
    """A guard walks the flattened configs only when a message needs it."""
    schema = Schema(App)
    calls: list[str] = []

    class Flat(dict[str, Any]):
        def items(self) -> Any:
            calls.append("walk")
            return super().items()

    g = guard(schema, Flat({"db.password": "hunter2", "db.host": "db"}))
    assert calls == []
    assert g.quotes_secret("bad hunter2")
    assert not g.quotes_secret("again db")
    assert calls == ["walk"]


def test_attrs_field_helpers_keep_working() -> None:
    """A plain attrs class (not `@sr.config`) with a secret field masks too."""

    @attrs.frozen
    class Plain:
        token: str = sr.secret(default="t0k")

    assert plain(Plain(), secret=False) == {"token": MASK}


# --- credential rules, URL user-info, reprs ---------------------------------------------------


@sr.config
class Service:
    api_key: str = ""
    cache_key: str = ""
    Client_Secret: str = ""
    max_tokens: int = 0
    dsn: str = ""
    level: str = sr.hot(default="info")
    signing: str = sr.hot(default="")
    flags: dict[str, str] = sr.hot(factory=dict)
    nested: dict[str, Db] = sr.hot(factory=dict)


def test_default_rules_match_the_last_segment_case_insensitively() -> None:
    """`password`, `*_key`, `apikey`, `*_secret` match (any case, `-` as `_`); `max_tokens` does not."""
    rules = sr.MaskRules()
    assert all(rules.matches(p) for p in ("db.password", "API-Key", "x.apikey", "Client_Secret", "credentials"))
    assert rules.matches("cache_key")  # documented over-masking: pass names= to show it
    assert not any(rules.matches(p) for p in ("max_tokens", "password_file", "keys", "db.host"))
    assert sr.MaskRules(extra=("pin",)).matches("a.pin")
    assert not sr.MaskRules.off().matches("password")


def test_rules_mask_but_keep_the_policy() -> None:
    """A rule-matched leaf is secret for masking only: its policy stays, a policy file may make it hot."""
    schema = Schema(Service, policies=[PolicySet(hot=("api_key",))])
    assert schema.leaves["api_key"].secret and schema.leaves["api_key"].by_rule
    assert schema.policy_of("api_key") == (sr.Policy.HOT, True)
    assert schema.policy_of("max_tokens") == (sr.Policy.RESTART_ONLY, False)
    assert schema.policy_of("flags.vendor_token") == (sr.Policy.HOT, True)  # mapping keys too
    off = Schema(Service, mask=sr.MaskRules.off())
    assert off.policy_of("api_key") == (sr.Policy.RESTART_ONLY, False)


def test_mask_url_is_structural() -> None:
    """Only the password of a URL's user-info is masked; user, host, path and other text stay."""
    from selreload._mask import mask_url, url_passwords

    assert mask_url("postgresql://app:a@db/app") == "postgresql://app:***@db/app"
    assert mask_url("redis://:s3cr3t@cache:6379/0 and more") == "redis://:***@cache:6379/0 and more"
    assert mask_url("https://user@host/path?password=x") == "https://user@host/path?password=x"
    assert mask_url("https://host:8443/a:b@c") == "https://host:8443/a:b@c"  # a port, not user-info
    assert mask_url("a database password") == "a database password"
    assert url_passwords(["amqp://u:p1@h", {"k": "x://y:p2@z"}]) == ["p1", "p2"]


def test_repr_masks_policy_rule_and_url_secrets() -> None:
    """A config's repr masks what its schemas make secret: rules, policy files, mapping keys, URL passwords."""
    Schema(Service, policies=[PolicySet(secret=("signing", "flags.vendor_*"))])
    cfg = Service(
        api_key="k1",
        signing="a",
        dsn="postgresql://app:pw@db/app",
        flags={"vendor_pin": "9", "color": "blue"},
        nested={"main": Db(host="h", password="pw")},
    )
    text = repr(cfg)
    assert "api_key=***" in text and "signing=***" in text and "Client_Secret=***" in text
    assert "dsn='postgresql://app:***@db/app'" in text
    assert "flags={'vendor_pin': ***, 'color': 'blue'}" in text
    assert "nested={'main': Db(host='h', password=***)}" in text
    assert "level='info'" in text and "max_tokens=0" in text
    data = masked_plain(cfg)
    assert data["flags"] == {"vendor_pin": MASK, "color": "blue"} and data["dsn"] == "postgresql://app:***@db/app"
    assert show("postgresql://app:pw@db/app", secret=False) == "'postgresql://app:***@db/app'"


def test_reloader_takes_mask_rules(tmp_path: Any) -> None:
    """`Reloader(mask=...)` reaches the schema: added names mask, `off()` shows rule-only leaves."""
    path = tmp_path / "c.json"
    path.write_text('{"level": "debug"}')
    r = sr.Reloader(Service, sources=[sr.JsonFile(path, watch=False)], mask=sr.MaskRules(extra=("level",)))
    assert r.schema.policy_of("level") == (sr.Policy.HOT, True)
    r = sr.Reloader(Service, sources=[sr.JsonFile(path, watch=False)], mask=sr.MaskRules.off())
    assert r.schema.policy_of("api_key")[1] is False

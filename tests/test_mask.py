"""The one masking policy: every rendering of a secret is `***`, by one rule."""

from __future__ import annotations

import datetime
from typing import Any

import attrs

import selreload as sr
from selreload._mask import MASK, masked_plain, plain, render, scrub, scrubber, show
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
    """People see `'info'`, `15m`; a secret is `***`; UNSET stays UNSET (it reveals nothing)."""
    assert render("info", secret=False) == "'info'"
    assert render(datetime.timedelta(minutes=15), secret=False) == "15m"
    assert render("hunter2", secret=True) == MASK
    assert render(UNSET, secret=True) == "UNSET"
    assert repr(sr.Change("db.password", "a", "b", secret=True)) == "Change('db.password', *** -> ***, hot)"


def test_repr_of_a_secret_field_is_masked() -> None:
    """The attrs repr of a config never shows a secret."""
    assert repr(Db()) == "Db(host='db', password=***)"


def test_show_masks_and_cuts() -> None:
    """Error messages quote raw values masked, env text as text, and cut long ones."""
    assert show("hunter2", secret=True) == MASK
    assert show(EnvText("x"), secret=False) == "'x'"
    assert len(show("y" * 500, secret=False)) == 80


def test_scrub_longest_first() -> None:
    """Every rendering of every secret goes, the longer secret first."""
    assert scrub("abc xabc 'abc'", ["abc", "xabc"]) == "*** *** ***"
    assert scrub("True None", [True, None, ""]) == "True None"


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


def test_scrubber_collects_secrets_on_first_use() -> None:
    """A scrubber walks the flattened configs only when a message needs it."""
    schema = Schema(App)
    calls: list[str] = []

    class Flat(dict[str, Any]):
        def items(self) -> Any:
            calls.append("walk")
            return super().items()

    scrub_secrets = scrubber(schema, Flat({"db.password": "hunter2", "db.host": "db"}))
    assert calls == []
    assert scrub_secrets("bad hunter2") == "bad ***"
    assert scrub_secrets("again hunter2") == "again ***"
    assert calls == ["walk"]


def test_attrs_field_helpers_keep_working() -> None:
    """A plain attrs class (not `@sr.config`) with a secret field masks too."""

    @attrs.frozen
    class Plain:
        token: str = sr.secret(default="t0k")

    assert plain(Plain(), secret=False) == {"token": MASK}

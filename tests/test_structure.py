"""The strict structurer: no coercion, every issue collected, env text parsed by type."""

from __future__ import annotations

import datetime
import enum
import pathlib
from typing import Any, Literal

import attrs
import pytest

import selreload as sr
from selreload._schema import Schema
from selreload._structure import Structurer
from selreload._values import EnvText, FrozenDict, FrozenList


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@sr.config
class Provider:
    name: str
    model_name: str = "small"


@sr.config
class Everything:
    flag: bool = False
    count: int = 0
    ratio: float = 0.5
    text: str = ""
    ttl: datetime.timedelta = datetime.timedelta(0)
    color: Color = Color.RED
    level: Level = Level.LOW
    mode: Literal["a", "b"] = "a"
    maybe: int | None = None
    tags: list[str] = attrs.field(factory=list)
    pair: tuple[int, int] = (0, 0)
    limits: dict[str, int] = attrs.field(factory=dict)
    providers: list[Provider] = attrs.field(factory=list)
    where: pathlib.Path = pathlib.Path(".")
    token: str = sr.secret(default="")


S = Structurer(Schema(Everything))


def ok(tree: dict[str, Any]) -> Everything:
    value, issues = S.structure(tree)
    assert issues == [], issues
    return value  # type: ignore[no-any-return]


def errors(tree: dict[str, Any]) -> list[str]:
    value, issues = S.structure(tree)
    assert value is None
    return [f"{i.path}: {i.message}" for i in issues]


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"flag": "false"}, "flag: expected a bool, got str 'false'"),
        ({"flag": 1}, "flag: expected a bool, got int 1"),
        ({"count": 4.7}, "count: expected an int, got float 4.7"),
        ({"count": "4"}, "count: expected an int, got str '4'"),
        ({"count": True}, "count: expected an int, got bool True"),
        ({"ratio": "0.5"}, "ratio: expected a number, got str '0.5'"),
        ({"text": {"a": 1}}, "text: expected a string, got a mapping of 1 key"),
        ({"text": [1, 2]}, "text: expected a string, got a list of 2 items"),
        ({"count": {}}, "count: expected an int, got a mapping of 0 keys"),
        ({"ttl": ["1s"]}, "ttl: expected a duration like"),
        ({"color": ["red"]}, "color: must be one of red, blue (got a list of 1 item)"),
        ({"text": 5}, "text: expected a string, got int 5"),
        ({"color": "green"}, "color: must be one of red, blue (got 'green')"),
        ({"level": "1"}, "level: must be one of 1, 2 (got '1')"),
        ({"mode": "c"}, "mode: must be one of a, b (got 'c')"),
        ({"tags": "a,b"}, "tags: expected a list, got str"),
        ({"tags": [1]}, "tags[0]: expected a string, got int 1"),
        ({"pair": [1, 2, 3]}, "pair: expected a list of 2 items, got 3"),
        ({"limits": {"a": "1"}}, "limits.a: expected an int, got str '1'"),
        ({"providers": [{"name": "x", "modle_name": "y"}]}, "providers[0].modle_name: unknown key; did you mean"),
        ({"providers": [{}]}, "providers[0].name: required key is missing"),
        (
            {"ttl": "soon"},
            "ttl: expected a duration like '15m', '24h', '1h30m' or seconds (or ISO 8601 'PT15M'), got 'soon'",
        ),
        ({"ttl": -5}, "ttl: a duration cannot be negative, got -5"),
        ({"ttl": float("inf")}, "ttl: a duration must be finite, got inf"),
        ({"ratio": float("nan")}, "ratio: expected a finite number (inf and nan are refused), got nan"),
        ({"ratio": 10**400}, "ratio: number out of range: past the largest float (~1.8e308), got a 401-digit integer"),
        ({"text": "a\ud800"}, "text: not valid text: contains an unpaired surrogate at index 1"),
        ({"limits": {"k\udcff": 1}}, "limits.k\\udcff: key not valid text: contains an unpaired surrogate at index 1"),
        ({"limits": {"k\nforged": 1}}, "limits.k\\nforged: key holds a control or invisible character (U+000A)"),
        ({"limits": {"k\x1b[2J": 1}}, "limits.k\\x1b[2J: key holds a control or invisible character (U+001B)"),
        ({"limits": {"a\u200bb": 1}}, "limits.a\\u200bb: key holds a control or invisible character (U+200B)"),
        ({"count": EnvText("1" * 4301)}, "count: integer too long: 4,301 digits, over the limit of 4,300"),
        ({"token": 12345}, "token: expected a string, got int ***"),
    ],
)
def test_no_coercion(tree: dict[str, Any], message: str) -> None:
    """Values of the wrong type are refused with the path and what was found (secrets masked)."""
    assert any(message in e for e in errors(tree)), errors(tree)


def test_every_issue_is_collected() -> None:
    """Problems in many fields come back together, not one at a time."""
    assert len(errors({"flag": "x", "count": "y", "tags": [1, 2], "nope": 1})) == 5


def test_good_values_structure() -> None:
    """Right types go through; ints are accepted for floats; durations and enums parse."""
    cfg = ok(
        {
            "flag": True,
            "ratio": 1,
            "ttl": "1h30m",
            "color": "blue",
            "level": 2,
            "maybe": None,
            "tags": ["a"],
            "pair": [1, 2],
            "limits": {"x": 1},
            "providers": [{"name": "openai"}],
            "where": "/tmp",
        }
    )
    assert cfg.ratio == 1.0 and type(cfg.ratio) is float
    assert cfg.ttl == datetime.timedelta(hours=1, minutes=30)
    assert cfg.color is Color.BLUE and cfg.level is Level.HIGH
    assert cfg.pair == (1, 2)
    assert isinstance(cfg.tags, FrozenList) and cfg.tags == ["a"]
    assert isinstance(cfg.limits, FrozenDict)
    assert cfg.providers[0] == Provider(name="openai")
    assert cfg.where == pathlib.Path("/tmp")


def test_env_text_is_parsed_by_field_type() -> None:
    """Text from env parses by the field's type: bool words, ints, JSON lists and mappings."""
    cfg = ok(
        {
            "flag": EnvText("true"),
            "count": EnvText("42"),
            "ratio": EnvText("0.25"),
            "ttl": EnvText("15m"),
            "color": EnvText("blue"),
            "level": EnvText("2"),
            "tags": EnvText('["a", "b"]'),
            "limits": EnvText('{"x": 3}'),
            "maybe": EnvText("null"),
        }
    )
    assert (cfg.flag, cfg.count, cfg.ratio, cfg.color, cfg.level) == (True, 42, 0.25, Color.BLUE, Level.HIGH)
    assert cfg.tags == ["a", "b"] and cfg.limits == {"x": 3} and cfg.maybe is None


def test_env_text_never_guessed() -> None:
    """Env text that does not parse as the field's type is an error, not a guess."""
    got = errors({"flag": EnvText("maybe"), "count": EnvText("4.5"), "tags": EnvText("[oops")})
    assert any("flag: expected a bool (true/false/1/0)" in e for e in got)
    assert any("count: expected an int" in e for e in got)
    assert any("tags: expected a list as JSON text, got invalid JSON" in e for e in got)


def test_validator_message_on_secret_is_masked() -> None:
    """A validator failure on a secret never quotes the value."""

    @sr.config
    class Creds:
        key: str = sr.secret(default="", validator=attrs.validators.min_len(20))
        kind: str = sr.secret(default="a", validator=attrs.validators.in_(["a", "b"]))
        pin: str = sr.secret(default="0000", validator=attrs.validators.matches_re(r"\d{4}"))

    tree = {"key": "hunter2-top-secret", "kind": "hunter2-kind", "pin": "hunter2-pin"}
    value, issues = Structurer(Schema(Creds)).structure(tree)
    assert value is None
    assert len(issues) == 3
    assert "hunter2" not in str(issues)
    assert "(got ***)" in issues[1].message


def test_sibling_secret_quoted_by_a_validator_is_masked() -> None:
    """A validator on a plain field that quotes a secret sibling does not leak it."""

    def differs(instance: Any, attribute: Any, value: str) -> None:
        if value == instance.password:
            raise ValueError(f"must differ from the password {instance.password!r}")

    @sr.config
    class Login:
        password: str = sr.secret(default="")
        user: str = sr.hot(default="", validator=differs)

    value, issues = Structurer(Schema(Login)).structure({"password": "sw0rdfish-77", "user": "sw0rdfish-77"})
    assert value is None
    assert len(issues) == 1
    assert "sw0rdfish" not in str(issues)
    assert issues[0].message == "the validator failed (ValueError); its message is withheld because it quotes a secret"

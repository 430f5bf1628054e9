"""`sr.json_schema` and `selreload schema`: the JSON Schema accepts every example config and refuses wrong ones."""

from __future__ import annotations

import datetime
import enum
import io
import json
import pathlib
import re
import sys
import types
from typing import Any, Literal

import attrs
import jsonschema
import pytest

import selreload as sr
from selreload._cli import main
from selreload._jsonschema import DURATION_PATTERN
from selreload._schema import is_config
from selreload._values import parse_duration
from selreload._yaml import safe_yaml
from selreload.demo import AdrConfig
from selreload.demo._config import ADR_POLICY, DEFAULT_CONFIG

ROOT = pathlib.Path(__file__).parent.parent


def validator(cls: type[Any], **kwargs: Any) -> jsonschema.Draft202012Validator:
    schema = sr.json_schema(cls, **kwargs)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def load(text: str) -> Any:
    return safe_yaml().load(text)


def problems(v: jsonschema.Draft202012Validator, text: str) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(load(text))]


def test_demo_default_config_validates_and_carries_policies() -> None:
    """The demo's starting config is valid; its leaves carry the policies of `ADR_POLICY`, secrets no default."""
    v = validator(AdrConfig, policies=ADR_POLICY)
    assert problems(v, DEFAULT_CONFIG.format(host="127.0.0.1", port=8000)) == []
    props = v.schema["properties"]
    assert props["logging"]["properties"]["level"]["x-selreload-policy"] == "hot"
    assert props["logging"]["properties"]["level"]["enum"] == ["debug", "info", "warning", "error", "critical"]
    assert props["server"]["properties"]["port"].items() >= {"minimum": 1, "maximum": 65535, "default": 8080}.items()
    assert props["server"]["properties"]["port"]["x-selreload-policy"] == "restart_only"
    secret = props["auth"]["properties"]["jwt_secret"]
    assert secret["x-selreload-secret"] is True and "default" not in secret
    assert props["auth"]["properties"]["jwt"]["properties"]["ttl"]["default"] == "1d"
    assert v.schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (("level: info", "level: loud"), "logging.level"),
        (("port: 8000", "port: 70000"), "server.port"),
        (("port: 8000", "port: eighty"), "server.port"),
        (("ttl: 15m", "ttl: 15 minutes"), "auth.jwt.ttl"),
        (("ratio: 0.25", "ratio: 1.5"), "telemetry.sampler.ratio"),
        (("v2_enabled: false", "v2_enabled: 'no'"), "api.v2_enabled"),
        (("pool_size: 5", "pool_sise: 5"), "database"),
    ],
)
def test_a_wrong_demo_config_fails(edit: tuple[str, str], where: str) -> None:
    """A bad choice, an out-of-range number, a wrong type, a bad duration or an unknown key is refused where it is."""
    text = DEFAULT_CONFIG.format(host="127.0.0.1", port=8000)
    assert edit[0] in text
    found = problems(validator(AdrConfig, policies=ADR_POLICY), text.replace(edit[0], edit[1], 1))
    assert [p for p in found if p.startswith(where + ":")], found


def example(name: str) -> types.ModuleType:
    __import__(f"examples.{name}")
    return sys.modules[f"examples.{name}"]


@pytest.mark.parametrize(
    ("module", "cls", "good", "bad", "partial"),
    [
        ("quickstart", "App", ["FIRST"], [], False),
        ("atomic_sighup", "Pricing", ["BEFORE", "AFTER"], ["BROKEN"], False),
        ("layered_fastapi", "Settings", ["DEFAULT_YAML"], [], False),
        ("layered_fastapi", "Settings", ["PRODUCTION_YAML"], [], True),
        ("llm_providers", "LlmConfig", ["INITIAL", "MODEL_CHANGED"], ["INVALID"], False),
    ],
)
def test_every_example_config_validates(module: str, cls: str, good: list[str], bad: list[str], partial: bool) -> None:
    """The YAML of each example is valid against its class's schema; the examples' broken edits are not."""
    mod = example(module)
    v = validator(getattr(mod, cls), partial=partial)
    for name in good:
        assert problems(v, getattr(mod, name)) == [], name
    for name in bad:
        assert problems(v, getattr(mod, name)), name


def test_quickstart_wrong_documents_fail() -> None:
    """The quickstart's schema refuses an unknown key, a bad level and a non-bool flag."""
    v = validator(example("quickstart").App)
    assert problems(v, "prot: 8080\n") == [": Additional properties are not allowed ('prot' was unexpected)"]
    assert problems(v, "logging: {level: loud}\n")
    assert problems(v, "feature_flags: {new_checkout: maybe}\n")


def doc_yaml_blocks() -> list[tuple[pathlib.Path, int, str]]:
    from test_docs import DOCS, blocks

    return [
        (doc, line, code)
        for doc in DOCS
        for line, kind, name, code in blocks(doc.read_text(encoding="utf-8"))
        if kind == "file" and name is not None and name.endswith((".yaml", ".yml"))
    ]


@pytest.mark.parametrize(
    ("doc", "line", "text"),
    doc_yaml_blocks(),
    ids=lambda x: str(x.relative_to(ROOT)) if isinstance(x, pathlib.Path) else str(x),
)
def test_every_docs_config_file_validates_against_a_class_of_its_page(
    doc: pathlib.Path, line: int, text: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each YAML file a docs page writes is valid against a config class the page defines."""
    from test_docs import run_blocks

    monkeypatch.chdir(tmp_path)
    module = types.ModuleType(f"schema_doc_{doc.stem.replace('-', '_')}")
    sys.modules[module.__name__] = module
    try:
        run_blocks(doc, module.__dict__, tmp_path)
        classes = [c for c in vars(module).values() if is_config(c) and c.__module__ == module.__name__]
        assert classes, f"{doc.name}:{line}: no config class on the page"
        tree = load(text)
        results = {c.__name__: problems(validator(c), text) for c in classes}
        # A page's file is for its top-level class: the one whose schema accepts it.
        assert any(not p for p in results.values()), f"{doc.name}:{line}: {results}"
        assert tree is not None
    finally:
        del sys.modules[module.__name__]


@pytest.mark.parametrize(
    "text", ["15m", "24h", "1h30m", "250ms", "90", "1.5", "2d", "1w", "PT15M", "P1DT2H", "P2W", "PT0.5S", " 5s ", "+5m"]
)
def test_duration_pattern_accepts_what_selreload_reads(text: str) -> None:
    """Every duration form `read_duration` accepts matches the schema's pattern."""
    assert parse_duration(text) is not None
    assert re.search(DURATION_PATTERN, text)


@pytest.mark.parametrize("text", ["15 minutes", "P", "PT", "P1M", "P1Y", "1h30", "-5m", "m", "", "P1DT"])
def test_duration_pattern_refuses_what_selreload_refuses(text: str) -> None:
    """Forms `read_duration` refuses do not match (the 100-year cap is the one rule left to selreload)."""
    assert parse_duration(text) is None
    assert not re.search(DURATION_PATTERN, text)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@sr.config
class Inner:
    """A nested section."""

    name: str = sr.field(default="x", validator=attrs.validators.min_len(1))
    """The name shown to people."""


@sr.config
class Kinds:
    required_key: str = sr.restart_only()
    mode: Literal["a", "b"] = sr.hot(default="a")
    color: Color = sr.hot(default=Color.RED)
    maybe: int | None = sr.hot(default=None)
    pair: tuple[int, str] = sr.hot(default=(1, "a"))
    tags: frozenset[str] = sr.hot(factory=frozenset)
    limits: dict[str, int] = sr.hot(factory=dict, metadata={"description": "per-tenant limits"})
    path: pathlib.Path = sr.restart_only(default=pathlib.Path("/tmp"))
    inner: Inner = sr.field(factory=Inner)
    items: list[Inner] = sr.hot(factory=list)
    ratio: float = sr.hot(default=0.5, validator=[attrs.validators.gt(0), attrs.validators.lt(1)])
    api_key: str = "k"  # secret by the credential-name rule


def test_types_map_to_json_schema() -> None:
    """Literal, Enum, Optional, tuple, set, dict, Path, nested classes, bounds, descriptions, required keys."""
    v = validator(Kinds)
    props = v.schema["properties"]
    assert props["mode"]["enum"] == ["a", "b"]
    assert props["color"].items() >= {"enum": ["red", "blue"], "default": "red"}.items()
    assert props["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert props["tags"]["uniqueItems"] is True
    assert props["limits"]["description"] == "per-tenant limits"
    assert (
        props["inner"]["properties"]["name"].items()
        >= {"minLength": 1, "description": "The name shown to people."}.items()
    )
    assert props["inner"]["description"] == "A nested section."
    assert props["ratio"].items() >= {"exclusiveMinimum": 0, "exclusiveMaximum": 1}.items()
    assert v.schema["required"] == ["required_key"]
    assert props["api_key"]["x-selreload-secret"] is True and "default" not in props["api_key"]
    good = {
        "required_key": "r",
        "mode": "b",
        "color": "blue",
        "maybe": None,
        "pair": [2, "b"],
        "tags": ["x", "y"],
        "limits": {"t": 3},
        "path": "/srv",
        "inner": {"name": "n"},
        "items": [{"name": "a"}],
        "ratio": 0.2,
    }
    assert list(v.iter_errors(good)) == []
    for key, bad in [
        ("mode", "c"),
        ("color", "RED"),
        ("pair", [1, "a", 3]),
        ("tags", ["x", "x"]),
        ("limits", {"t": "3"}),
        ("inner", {"name": ""}),
        ("items", [{"nam": "a"}]),
        ("ratio", 1),
    ]:
        assert list(v.iter_errors(good | {key: bad})), key
    assert list(v.iter_errors({})), "required_key is required"
    assert list(validator(Kinds, partial=True).iter_errors({})) == []


def test_cli_prints_the_schema(tmp_path: pathlib.Path) -> None:
    """`selreload schema --schema mod:Class [--policies FILE]` prints the JSON Schema."""
    out, err = io.StringIO(), io.StringIO()
    policy = ROOT / "selreload" / "policies" / "web-service.yaml"
    code = main(["schema", "--schema", "selreload.demo:AdrConfig", "--policies", str(policy)], out=out, err=err)
    assert code == 0, err.getvalue()
    schema = json.loads(out.getvalue())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["api"]["properties"]["v2_enabled"]["x-selreload-policy"] == "hot"
    code = main(
        ["schema", "--schema", "selreload.demo:AdrConfig", "--policies", str(tmp_path / "no.yaml")], out=out, err=err
    )
    assert code == 1 and "no such file" in err.getvalue()


def test_timedelta_default_is_rendered_as_text() -> None:
    """A duration default is shown the way config files write it."""

    @sr.config
    class T:
        ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(minutes=90))

    assert sr.json_schema(T)["properties"]["ttl"]["default"] == "1h30m"

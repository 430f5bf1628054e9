"""`sr.explain`: value, origin and policy of each leaf; secrets masked; invalid config raises."""

from __future__ import annotations

import datetime
import pathlib

import pytest

import selreload as sr
from selreload._explain import render_table


@sr.config
class Auth:
    jwt_ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(hours=24))
    jwt_secret: str = sr.secret(default="")


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    auth: Auth = sr.field(factory=Auth)
    feature_flags: dict[str, bool] = sr.hot(factory=dict)


@pytest.fixture
def sources(tmp_path: pathlib.Path) -> list[sr.YamlFile | sr.Env]:
    path = tmp_path / "c.yaml"
    path.write_text("port: 9090\nauth:\n  jwt_secret: hunter2\nfeature_flags:\n  a: true\n")
    return [sr.YamlFile(path, watch=False), sr.Env("APP_", {"APP_AUTH__JWT_TTL": "15m"})]


def test_every_leaf_with_value_origin_policy(sources: list[sr.YamlFile | sr.Env], tmp_path: pathlib.Path) -> None:
    """One Explanation per leaf, in schema order, mapping keys per key."""
    rows = sr.explain(App, sources)
    c = f"{tmp_path}/c.yaml"
    assert rows == [
        sr.Explanation("port", 9090, f"{c}:1:7", sr.Policy.RESTART_ONLY),
        sr.Explanation("auth.jwt_ttl", datetime.timedelta(minutes=15), "env:APP_AUTH__JWT_TTL", sr.Policy.HOT),
        sr.Explanation("auth.jwt_secret", "***", f"{c}:3:15", sr.Policy.RESTART_ONLY, secret=True),
        sr.Explanation("feature_flags.a", True, f"{c}:5:6", sr.Policy.HOT),
    ]


def test_path_filter(sources: list[sr.YamlFile | sr.Env]) -> None:
    """A path selects the leaves at or under it; a glob works too."""
    assert [e.path for e in sr.explain(App, sources, "auth")] == ["auth.jwt_ttl", "auth.jwt_secret"]
    assert [e.path for e in sr.explain(App, sources, "feature_flags.*")] == ["feature_flags.a"]


def test_policies_apply(sources: list[sr.YamlFile | sr.Env]) -> None:
    """Policy files tighten policies in the explanation as they would in a Reloader."""
    rows = sr.explain(App, sources, "auth.jwt_ttl", policies=[sr.PolicySet(restart=("auth.*",))])
    assert rows[0].policy is sr.Policy.RESTART_ONLY


def test_table_masks_secrets(sources: list[sr.YamlFile | sr.Env]) -> None:
    """The rendered table has a header, durations as people write them, and no secret."""
    table = render_table(sr.explain(App, sources))
    lines = table.splitlines()
    assert lines[0].split() == ["PATH", "VALUE", "POLICY", "ORIGIN"]
    assert "auth.jwt_ttl" in lines[2] and "15m" in lines[2] and "env:APP_AUTH__JWT_TTL" in lines[2]
    assert "restart_only, secret" in table
    assert "hunter2" not in table


def test_invalid_config_raises(tmp_path: pathlib.Path) -> None:
    """Invalid config raises ConfigError with every issue placed."""
    path = tmp_path / "c.yaml"
    path.write_text("port: x\nprot: 1\n")
    with pytest.raises(sr.ConfigError) as info:
        sr.explain(App, [sr.YamlFile(path, watch=False)])
    assert str(info.value).splitlines() == [
        f"{path}:1:7: port: expected an int, got str 'x'",
        f"{path}:2:1: prot: unknown key; did you mean 'port'?",
    ]

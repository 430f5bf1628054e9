"""File sources: fast parse for the tree, positions only on demand, cached layers for
unchanged bytes, and syntax errors at their own line:col in YAML, JSON and TOML."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

import selreload as sr
from selreload.sources import _file
from selreload.sources._json import json_positions
from selreload.sources._toml import toml_positions


def test_unchanged_bytes_return_the_cached_layer(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same bytes: the same Layer object and no parse; new bytes: a new parse."""
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\n")
    source = sr.YamlFile(path, watch=False)
    parses: list[str] = []
    real = _file._safe_yaml

    def counting() -> Any:
        parses.append("safe")
        return real()

    monkeypatch.setattr(_file, "_safe_yaml", counting)
    first = source.load()
    assert source.load() is first
    assert parses == ["safe"]
    path.write_text("a: 2\n")
    assert source.load().tree == {"a": 2}
    assert parses == ["safe", "safe"]


def test_round_trip_parse_only_when_located(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading never runs the slow round-trip parse; `locate()` runs it once and caches it."""
    path = tmp_path / "c.yaml"
    path.write_text("a:\n  b: 1\n")
    calls: list[str] = []
    real = _file.yaml_positions

    def spy(name: str, text: str) -> dict[str, str]:
        calls.append(name)
        return real(name, text)

    monkeypatch.setattr(_file, "yaml_positions", spy)
    layer = sr.YamlFile(path, watch=False).load()
    assert calls == []
    assert layer.locate()["a.b"] == f"{path}:2:6"
    layer.locate()
    assert calls == [str(path)]


def test_fast_tree_is_plain_data(tmp_path: pathlib.Path) -> None:
    """The tree is plain dicts and lists (the C loader), not ruamel's commented types."""
    path = tmp_path / "c.yaml"
    path.write_text("a: {b: [1, 2]}\n")
    tree = sr.YamlFile(path, watch=False).load().tree
    assert tree is not None
    assert type(tree) is dict and type(tree["a"]) is dict and type(tree["a"]["b"]) is list


def test_missing_optional_file_is_absent(tmp_path: pathlib.Path) -> None:
    """A missing optional file loads as an absent layer (tree None)."""
    layer = sr.TomlFile(tmp_path / "nope.toml", required=False, watch=False).load()
    assert layer.tree is None


def test_watch_false_returns_no_watcher(tmp_path: pathlib.Path) -> None:
    """`watch=False` means the source is not watched."""
    assert sr.JsonFile(tmp_path / "x.json", watch=False).watch(lambda trigger: None) is None


def test_relative_path_is_shown_as_given(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors name a relative path as the user wrote it, resolved once at creation."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("a: [1\n")
    source = sr.YamlFile("c.yaml", watch=False)
    assert source.path == tmp_path / "c.yaml"
    with pytest.raises(sr.ConfigError) as info:
        source.load()
    assert str(info.value).startswith("c.yaml:2:1: YAML syntax error")


@pytest.mark.parametrize(
    ("cls", "text", "expected"),
    [
        (sr.JsonFile, '{\n  "a": 1,\n  "b": [1 2]\n}', "c:3:11: JSON syntax error: Expecting ',' delimiter"),
        (sr.TomlFile, "a = 1\nb = \n", "c:2:5: TOML syntax error: Invalid value"),
        (sr.YamlFile, "a: 1\n b: 2\n", "c:2:3: YAML syntax error: mapping values are not allowed"),
    ],
)
def test_syntax_errors_have_line_and_col(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, cls: Any, text: str, expected: str
) -> None:
    """A syntax error names file:line:col and the parser's reason, in every format."""
    monkeypatch.chdir(tmp_path)
    pathlib.Path("c").write_text(text)
    with pytest.raises(sr.ConfigError) as info:
        cls("c", watch=False).load()
    assert str(info.value).startswith(expected), str(info.value)


def test_json_positions() -> None:
    """Every JSON value's start, nested objects and arrays included."""
    text = '{"a": {"b": [10, {"c": "x"}]},\n "d": null, "e": []}'
    assert json_positions("f", text) == {
        "a": "f:1:7",
        "a.b": "f:1:13",
        "a.b[0]": "f:1:14",
        "a.b[1]": "f:1:18",
        "a.b[1].c": "f:1:24",
        "d": "f:2:7",
        "e": "f:2:18",
    }


def test_toml_positions() -> None:
    """Tables, dotted and quoted keys, arrays of tables, and multi-line values."""
    text = (
        "title = 'x'\n"
        "[server]\n"
        "http.port = 80\n"
        '"odd key" = """\n'
        "[not.a.table]\n"
        '"""\n'
        "hosts = [\n"
        "  'a',  # ]\n"
        "]\n"
        "[[db]]\n"
        "name = 'one'\n"
        "[[db]]\n"
        "name = 'two'\n"
        "[db.opts]\n"
        "ssl = true\n"
    )
    got = toml_positions("f", text)
    assert got["title"] == "f:1:9"
    assert got["server"] == "f:2:1"
    assert got["server.http.port"] == "f:3:13"
    assert got["server.odd key"] == "f:4:13"
    assert "not.a.table" not in got
    assert got["server.hosts"] == "f:7:9"
    assert got["db[0].name"] == "f:11:8"
    assert got["db[1].name"] == "f:13:8"
    assert got["db[1].opts.ssl"] == "f:15:7"


def test_bom_is_accepted(tmp_path: pathlib.Path) -> None:
    """A UTF-8 byte order mark (Windows editors) is not part of the document."""
    path = tmp_path / "c.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert sr.JsonFile(path, watch=False).load().tree == {"a": 1}

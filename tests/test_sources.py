"""File sources: fast parse for the tree, positions only on demand, cached layers for
unchanged bytes, and syntax errors at their own line:col in YAML, JSON and TOML."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    real = _file.parse_yaml

    def counting(name: str, text: str, **kwargs: Any) -> Any:
        parses.append("safe")
        return real(name, text, **kwargs)

    monkeypatch.setattr(_file, "parse_yaml", counting)
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
    assert str(info.value).startswith("c.yaml:1:4: YAML syntax error")


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


@pytest.mark.parametrize(
    ("fmt", "text", "where", "needle"),
    [
        ("yaml", "name: x\ntags: [a, b\nother: 1\n", ":2:7:", "'[' is not closed (at 3:"),
        ("yaml", "name: 'x\n\nother: 1\n", ":1:7:", "a quoted string is not closed"),
        ("json", '{"name": "x",\n "tags": [1, 2\n}', ":2:10:", "'[' is not closed (at 3:1:"),
        ("json", '{"name": "x",\n "extra": {"a": 1\n', ":2:11:", "'{' is not closed"),
        ("toml", 'name = "x"\ntags = [1, 2\nother = 1\n', ":2:8:", "'[' is not closed (at 3:"),
        ("toml", 'name = "x\nother = 1\n', ":1:8:", "a quoted string is not closed"),
    ],
)
def test_unclosed_openers_are_placed_where_they_opened(
    tmp_path: pathlib.Path, fmt: str, text: str, where: str, needle: str
) -> None:
    """An unclosed `[`, `{` or quote is reported at its opener, naming where the parser gave up."""
    path = tmp_path / f"c.{fmt}"
    path.write_text(text)
    source = {"yaml": sr.YamlFile, "json": sr.JsonFile, "toml": sr.TomlFile}[fmt](path, watch=False)
    with pytest.raises(sr.ConfigError) as info:
        source.load()
    assert f"{path}{where}" in str(info.value) and needle in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("fmt", "text", "where"),
    [
        ("yaml", "name: x\nnmae:\n  deep: 1\n", ":2:1:"),
        ("json", '{"name": "x",\n  "nmae": 1}', ":2:3:"),
        ("toml", 'name = "x"\n  nmae = 1\n', ":2:3:"),
    ],
)
def test_unknown_key_is_placed_at_the_key(tmp_path: pathlib.Path, fmt: str, text: str, where: str) -> None:
    """An unknown key points at the key's column, not at its value."""

    @sr.config
    class C:
        name: str = sr.hot(default="")

    path = tmp_path / f"c.{fmt}"
    path.write_text(text)
    source = {"yaml": sr.YamlFile, "json": sr.JsonFile, "toml": sr.TomlFile}[fmt](path, watch=False)
    with pytest.raises(sr.ConfigError) as info:
        sr.Reloader(C, [source]).start()
    assert str(info.value).startswith(f"{path}{where} nmae: unknown key"), str(info.value)


@given(cut=st.integers(0, 200), extra=st.text(max_size=8))
def test_json_position_scanner_never_raises(cut: int, extra: str) -> None:
    """The JSON scanner takes any prefix of a document with duplicate keys (and junk) and
    returns what it found, never an exception."""
    from selreload.sources._json import _Scanner

    text = '{"a": {"b": 1, "b": [2, "x\\"y"]}, "c": {"d": null}, "e": [1, {"f": true}]}'
    n = min(cut, len(text))
    scanner = _Scanner("c.json", text[:n] + extra)
    scanner.run()
    if n >= 20:
        assert scanner.duplicate == ("a.b", "c.json:1:16")


def test_parser_text_never_reaches_messages(tmp_path: pathlib.Path) -> None:
    """A tag or a value a YAML constructor chokes on is named by selreload, without the value."""
    path = tmp_path / "c.yaml"
    for text, message in [
        ("password: !!int hunter2\n", ":1:11: a value does not fit its YAML tag"),
        ("flag: !!bool maybe\n", ":1:7: a value does not fit its YAML tag"),
        ("x: !!python/object:os.system hunter2\n", ":1:4: unsupported YAML tag"),
        ("x: !!timestamp 2020-99-99 hunter2\n", ":1:4: a value does not fit its YAML tag"),
    ]:
        path.write_text(text)
        with pytest.raises(sr.ConfigError) as info:
            sr.YamlFile(path, watch=False).load()
        shown = str(info.value)
        assert message in shown and "hunter2" not in shown and "maybe" not in shown and "python" not in shown, shown


@pytest.mark.parametrize(
    "size", [0, 1, 4095, 4096, 4097, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 7, 4 * (1 << 20)]
)
def test_read_file_reads_every_size_whole_up_to_the_limit(tmp_path: pathlib.Path, size: int) -> None:
    """Short reads end the loop (no read just to see EOF): every size still reads whole,
    across the 4 KiB and 1 MiB chunk edges, and one byte over the limit is refused."""
    from selreload.sources._file import read_file

    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert read_file(path, where="blob", max_bytes=4 * (1 << 20)) == data
    if size:
        with pytest.raises(sr.ConfigError, match="file too large"):
            read_file(path, where="blob", max_bytes=size - 1)

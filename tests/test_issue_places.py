"""Every issue names its place, whatever the key: a key shown escaped in the issue (a tab,
an escape code, an invisible character) is still found in the file it came from."""

from __future__ import annotations

import json
import pathlib
import re
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import selreload as sr


@sr.config
class App:
    level: str = sr.hot(default="info")
    flags: dict[str, bool] = sr.hot(factory=dict)


# Keys made of anything a file can carry: control and format characters, spaces, quotes,
# backslashes, dots, non-ASCII; never a surrogate (no UTF-8 file holds one).
KEYS = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\ufeff"), min_size=1, max_size=8
).filter(lambda k: k.strip() and k not in ("level", "flags") and "." not in k and "[" not in k)


def quote(key: str) -> str:
    """`key` as a double-quoted YAML or TOML string: every character that is not printable
    (and the quote and backslash) escaped, as both read `\\uXXXX` and `\\UXXXXXXXX`."""
    out = []
    for c in key:
        if c in '"\\':
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        else:
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


def document(fmt: str, key: str, *, nested: bool) -> str:
    quoted = json.dumps(key) if fmt == "json" else quote(key)
    if fmt == "json":
        return f'{{"level": "info", "flags": {{{quoted}: "x"}}}}' if nested else f'{{"level": "info", {quoted}: 1}}'
    if fmt == "toml":
        return f'level = "info"\n[flags]\n{quoted} = "x"\n' if nested else f'level = "info"\n{quoted} = 1\n'
    return f'level: info\nflags:\n  {quoted}: "x"\n' if nested else f"level: info\n{quoted}: 1\n"


SOURCES = {"yaml": sr.YamlFile, "json": sr.JsonFile, "toml": sr.TomlFile}


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(SOURCES)), KEYS, st.booleans())
def test_an_issue_at_any_key_names_its_line_and_column(fmt: str, key: str, nested: bool) -> None:
    """An unknown key (at the top) or a bad value (below `flags`), whatever the key holds:
    the issue reads `config.FMT:LINE:COL: PATH: ...`, never `default`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / f"config.{fmt}"
        path.write_text(document(fmt, key, nested=nested), encoding="utf-8")
        reloader = sr.Reloader(App, [SOURCES[fmt](path, watch=False)])
        with pytest.raises(sr.ConfigError) as caught:
            reloader.start()
    (issue,) = caught.value.issues
    assert issue.origin is not None and re.fullmatch(rf"{re.escape(str(path))}:\d+:\d+", issue.origin), str(issue)
    assert issue.path.startswith("flags.") if nested else "unknown key" in issue.message


@pytest.mark.parametrize("first", [True, False])
@pytest.mark.parametrize("key", ["a\tb", "a\x1b[31mb", "a\u200bb", "a\\x1b[31mb", "a.b", "a[0]", "]"])
def test_look_alike_keys_are_each_placed_at_their_own_line(tmp_path: pathlib.Path, key: str, first: bool) -> None:
    """A key holding a tab shows as `a\\tb`, as does one holding a backslash and a `t`; a
    key holding a dot or a bracket shows as a path would. Beside a printable look-alike
    (`a\\tb`, `a\\x1b[31mb`, `a.b` below `a`, ...), in either order: the issue about the
    key that cannot be one points at that key's line, and the bad value at its own."""
    shown = str(sr.Issue(key, "m").path)
    path = tmp_path / "config.yaml"
    lines = {"key": f"  {quote(key)}: x", "other": f"  {quote(shown)}: true"} if shown != key else {}
    if not lines:  # printable: its bad value, beside the key its path starts with
        head = re.split(r"[.\[\]]", key)[0] or "z"
        lines = {"key": f"  {quote(key)}: x", "other": f"  {quote(head)}: true"}
    order = ["key", "other"] if first else ["other", "key"]
    path.write_text("level: info\nflags:\n" + "\n".join(lines[n] for n in order) + "\n")
    line_of = {n: 3 + order.index(n) for n in order}
    with pytest.raises(sr.ConfigError) as caught:
        sr.Reloader(App, [sr.YamlFile(path, watch=False)]).start()
    for issue in caught.value.issues:
        assert issue.origin is not None, str(issue)
        m = re.fullmatch(rf"{re.escape(str(path))}:(\d+):\d+", issue.origin)
        assert m is not None, str(issue)
        about = "key" if issue.message.startswith("key ") or "expected a bool" in issue.message else "other"
        assert int(m[1]) == line_of[about], str(issue)

"""`sr.DotEnv`: python-dotenv syntax as a layer, values typed like env, origins `file:line`."""

from __future__ import annotations

import datetime
import pathlib
import time

import attrs
import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload.sources._dotenv import DotEnvSyntaxError, parse_dotenv


@sr.config
class Logging:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning", "error"]))


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    timeout: datetime.timedelta = sr.hot(default=datetime.timedelta(seconds=30))
    url: str = sr.restart_only(default="")
    banner: str = sr.hot(default="")
    cert: str = sr.secret(default="")
    hosts: list[str] = sr.hot(factory=list)
    logging: Logging = sr.field(factory=Logging)


DOTENV = """\
# settings for local development
export APP_PORT=9090          # export is optional
APP_LOGGING__LEVEL=debug
APP_TIMEOUT=15m
DB_HOST=db.internal
APP_URL=postgres://${DB_HOST}:${DB_PORT:-5432}/app
APP_BANNER='literal ${DB_HOST} \\' and #hash'
APP_CERT="-----BEGIN-----
line\\ttwo
-----END-----"
APP_HOSTS=["a", "b"]
"""


def start(path: pathlib.Path, **kwargs: object) -> sr.Snapshot[App]:
    reloader = sr.Reloader(App, [sr.DotEnv(path, watch=False, environ={}, **kwargs)], registry=CollectorRegistry())  # type: ignore[arg-type]
    return reloader.start()


def test_values_typed_by_field_and_origins_are_lines(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each key under the prefix sets its path, parsed by the field's type; its origin is `file:line`."""
    (tmp_path / ".env").write_text(DOTENV)
    monkeypatch.chdir(tmp_path)
    snap = start(pathlib.Path(".env"))
    cfg = snap.config
    assert cfg.port == 9090
    assert cfg.logging.level == "debug"
    assert cfg.timeout == datetime.timedelta(minutes=15)
    assert cfg.url == "postgres://db.internal:5432/app"  # ${VAR} and ${VAR:-default}
    assert cfg.banner == "literal ${DB_HOST} ' and #hash"  # single quotes: literal
    assert cfg.cert == "-----BEGIN-----\nline\ttwo\n-----END-----"  # multiline, escapes
    assert cfg.hosts == ["a", "b"]
    assert snap.origins["port"] == ".env:2"
    assert snap.origins["logging.level"] == ".env:3"
    assert snap.origins["cert"] == ".env:8"
    assert snap.origins["hosts"] == ".env:11"


def test_errors_name_the_line(tmp_path: pathlib.Path) -> None:
    """A bad value and an unknown key are issues at their lines; so is a key set twice."""
    path = tmp_path / ".env"
    path.write_text("APP_PORT=eighty\nAPP_LOGING__LEVEL=debug\n")
    with pytest.raises(sr.ConfigError) as info:
        start(path)
    text = str(info.value)
    assert f"{path}:1: port: expected an int" in text
    assert f"{path}:2: loging: unknown key; did you mean 'logging'?" in text
    path.write_text("APP_URL=a\nAPP_URL=b\n")
    with pytest.raises(sr.ConfigError, match=rf"{path}:2: APP_URL is set twice \(lines 1 and 2\): use one"):
        start(path)


def test_syntax_errors_are_refused_with_their_line(tmp_path: pathlib.Path) -> None:
    """An unterminated quote is INVALID at its line (python-dotenv would skip it with a warning)."""
    path = tmp_path / ".env"
    path.write_text('APP_PORT=1\nAPP_URL="never closed\nAPP_BANNER=x\n')
    with pytest.raises(sr.ConfigError, match=rf"{path}:2: unterminated double-quoted value"):
        start(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1", [("A", "1", True, 1)]),
        ("  export A = spaced value  ", [("A", "spaced value", True, 1)]),
        ("A=a#b", [("A", "a#b", True, 1)]),
        ("A=a #b", [("A", "a", True, 1)]),
        ("A=", [("A", "", True, 1)]),
        ("A", [("A", None, False, 1)]),
        ("A='x\\'y\\\\z'", [("A", "x'y\\z", False, 1)]),
        ('A="x\\n\\"y\\"" # c', [("A", 'x\n"y"', True, 1)]),
        ("A='a\nb'\nB=2", [("A", "a\nb", False, 1), ("B", "2", True, 3)]),
        ("\n# c\n\nexport=1", [("export", "1", True, 4)]),
        ("A=1\r\nB=2\r\n", [("A", "1", True, 1), ("B", "2", True, 2)]),
    ],
)
def test_parse_matches_python_dotenv(text: str, expected: list[tuple[str, str | None, bool, int]]) -> None:
    """The grammar python-dotenv reads: export, comments, quotes, escapes, multiline values."""
    assert parse_dotenv(text) == expected


@pytest.mark.parametrize("text", ['A="open', "A='open", 'A="x" y', "=1"])
def test_parse_refuses(text: str) -> None:
    """Unterminated quotes, text after a closing quote and a missing key are syntax errors."""
    with pytest.raises(DotEnvSyntaxError):
        parse_dotenv(text)


def test_interpolation_can_be_turned_off_and_looks_in_environ(tmp_path: pathlib.Path) -> None:
    """`${VAR}` falls back to `environ`; `interpolate=False` keeps the text as written."""
    path = tmp_path / ".env"
    path.write_text("APP_URL=${HOST}/x\n")
    reloader = sr.Reloader(App, [sr.DotEnv(path, watch=False, environ={"HOST": "h"})], registry=CollectorRegistry())
    assert reloader.start().config.url == "h/x"
    assert start(path, interpolate=False).config.url == "${HOST}/x"


def test_missing_file_is_an_absent_layer_unless_required(tmp_path: pathlib.Path) -> None:
    """A `.env` is optional by default."""
    assert start(tmp_path / ".env").config.port == 8080
    with pytest.raises(sr.ConfigError, match="required config file is missing"):
        start(tmp_path / ".env", required=True)


def test_edit_reloads_through_the_file_watch(tmp_path: pathlib.Path) -> None:
    """A `.env` is watched like a config file: an edit of a hot key applies live."""
    path = tmp_path / ".env"
    path.write_text("APP_LOGGING__LEVEL=info\n")
    reloader = sr.Reloader(App, [sr.YamlFile(tmp_path / "none.yaml", required=False), sr.DotEnv(path)])
    with reloader:
        path.write_text("APP_LOGGING__LEVEL=warning\n")
        deadline = time.monotonic() + 10
        while reloader.current.logging.level != "warning" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reloader.current.logging.level == "warning"
        assert reloader.snapshot.origins["logging.level"] == f"{path}:1"


@pytest.mark.parametrize(
    ("lines", "environ", "line"),
    [
        # Each line uses the one before it twice: 30 lines would make 100 GiB of text.
        (["A0=" + "x" * 100] + [f"A{i}=${{A{i - 1}}}${{A{i - 1}}}" for i in range(1, 30)], {}, 16),
        # One line using a big process variable 100,000 times (a 600 kB line).
        (["APP_BANNER=" + "${BIG}" * 100_000], {"BIG": "y" * 100_000}, 1),
    ],
    ids=["doubling", "wide"],
)
def test_an_expansion_bomb_is_refused_at_its_line(
    tmp_path: pathlib.Path, lines: list[str], environ: dict[str, str], line: int
) -> None:
    """`${VAR}` expansion may not make more text than the file may hold (max_bytes): past
    it, INVALID at the line, before the text is built; the live config stays."""
    path = tmp_path / ".env"
    path.write_text("APP_BANNER=live\n")
    reloader = sr.Reloader(App, [sr.DotEnv(path, watch=False, environ=environ)], registry=CollectorRegistry())
    with reloader:
        path.write_text("\n".join(lines) + "\n")
        cpu = time.process_time()
        result = reloader.reload()
        cpu = time.process_time() - cpu
        assert result.outcome is sr.Outcome.INVALID
        (issue,) = result.errors
        assert issue.origin == f"{path}:{line}", issue
        assert "expands the file's values past 4,194,304 characters" in issue.message
        assert cpu < 2.0  # the old code built every value: 20 doubling lines took 52 MiB, 30 would take 100 GiB
        assert reloader.current.banner == "live"

"""Text from outside reaches the log as one printable line: a newline, an escape code or an
invisible character in a key, an applier's error, an actor or a trigger is written as its
escape (`\\n`, `\\x1b`). A mapping key holding one is refused: it is never a name an
operator meant.

Measured before: a JSON key `"x\\nconfig 'default' reload (manual) applied v9: ..."`
wrote that forged line into the log verbatim, and `"\\u001b[2J"` cleared the terminal of
whoever read it; `POST /overrides` took `"actor": "alice\\n..."` the same way.
"""

from __future__ import annotations

import io
import json
import logging
import pathlib
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._cli import main
from selreload._statedir import StateDir
from selreload.asgi import admin_app
from selreload.typing import Layer
from tests.conftest import write_atomic

TOKEN = "t0ken-one-line-text"
FORGED = "config 'default' reload (manual) applied v99: level 'info' -> 'debug'"


@sr.config
class App:
    level: str = sr.hot(default="info")
    flags: dict[str, bool] = sr.hot(factory=dict)
    extra: dict[str, object] = sr.hot(factory=dict)


class Lines(logging.Handler):
    """Every record of selreload's loggers, as the handler formats it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("selreload"):
            self.messages.append(record.getMessage())


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler, root = Lines(), logging.getLogger("selreload")
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)  # setLevel, not `.level =`: it clears isEnabledFor's cache
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _one_line_everywhere(lines: Lines, result: sr.ReloadResult, audit: pathlib.Path) -> None:
    for message in lines.messages:
        assert message.isprintable(), repr(message)
    for issue in result.errors:
        assert str(issue).isprintable(), repr(str(issue))
    for raw in audit.read_bytes().splitlines():
        json.loads(raw)  # one record per line: a key's newline did not split one


# Every character str.isprintable() refuses: controls, format (U+200B), surrogates,
# line and paragraph separators, and spaces other than " " (U+00A0).
UNPRINTABLE = st.characters(categories=["Cc", "Cf", "Cs", "Zl", "Zp", "Zs"], exclude_characters=" ")
KEYS = st.builds(lambda a, b, c: a + b + c, st.text(max_size=4), UNPRINTABLE, st.text(max_size=4))


@settings(max_examples=150, deadline=None)
@given(key=KEYS, where=st.sampled_from(["flags", "extra", "root", "deep"]))
def test_a_key_of_any_characters_is_one_printable_line_in_every_channel(key: str, where: str) -> None:
    """Any key holding a character `isprintable()` refuses, wherever it sits (a typed map,
    an untyped one, an unknown key, a nested unknown key): the reload is INVALID when the key
    is not a valid name, the live config stays, and every log line, issue and audit record is
    one printable line."""
    tree: dict[str, Any] = {
        "flags": {"flags": {key: True}},
        "extra": {"extra": {"a": {key: 1}}},
        "root": {"level": "debug", key: 1},
        "deep": {"flags": {"ok": True}, "level": "debug", "x": {key: 1}},
    }[where]
    handler, logger = Lines(), logging.getLogger("selreload")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with tempfile.TemporaryDirectory() as d:
            cfg, audit = pathlib.Path(d, "c.json"), pathlib.Path(d, "audit.jsonl")
            cfg.write_text('{"level": "info"}')
            r = sr.Reloader(
                App, [sr.JsonFile(cfg, watch=False)], audit=sr.AuditLog(audit), registry=CollectorRegistry()
            )
            with r:
                cfg.write_text(json.dumps(tree))  # ASCII: JSON escapes carry every character
                result = r.reload()
                assert result.outcome is sr.Outcome.INVALID, result
                assert r.current.level == "info" and r.current.flags == {}
                _one_line_everywhere(handler, result, audit)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_the_forged_line_of_the_report_is_escaped(tmp_path: pathlib.Path, lines: Lines) -> None:
    """The measured case: a key of a newline and a whole forged log line, and an escape
    code; the log shows them escaped, on the line of the real attempt."""
    cfg, audit = tmp_path / "c.json", tmp_path / "audit.jsonl"
    cfg.write_text('{"level": "info"}')
    with sr.Reloader(App, [sr.JsonFile(cfg, watch=False)], audit=sr.AuditLog(audit), registry=CollectorRegistry()) as r:
        cfg.write_text(json.dumps({"x\n" + FORGED: 1, "flags": {"k\x1b[2J": True}}))
        result = r.reload()
    _one_line_everywhere(lines, result, audit)
    shown = "\n".join(lines.messages)
    assert not any(m.startswith(FORGED) for m in lines.messages)
    assert "x\\n" + FORGED in shown and "flags.k\\x1b[2J: key holds a control or invisible character (U+001B)" in shown


def test_an_appliers_error_text_is_one_line(tmp_path: pathlib.Path, lines: Lines) -> None:
    """An applier's exception text may quote a value, and a value may hold a newline: the
    error names it on one line, in the result and the log."""
    cfg, audit = tmp_path / "c.json", tmp_path / "audit.jsonl"
    cfg.write_text('{"level": "info"}')
    r = sr.Reloader(App, [sr.JsonFile(cfg, watch=False)], audit=sr.AuditLog(audit), registry=CollectorRegistry())

    @r.on("level")
    def fail(changes: Sequence[sr.Change], snapshot: sr.Snapshot[App]) -> None:
        for c in changes:
            if c.new != "info":
                raise ValueError(f"cannot use {c.new}")

    with r:
        cfg.write_text(json.dumps({"level": "debug\n" + FORGED}))
        result = r.reload()
        assert result.outcome is sr.Outcome.ROLLED_BACK and r.current.level == "info"
    _one_line_everywhere(lines, result, audit)
    assert any("cannot use debug\\n" + FORGED in m for m in lines.messages)


def test_a_source_may_name_its_trigger_anything(tmp_path: pathlib.Path, lines: Lines) -> None:
    """A source of the user's that notifies with a trigger of a newline still reloads (the
    trigger escaped); reload() itself refuses such a trigger by name."""
    notified: list[Any] = []

    class Odd:
        name = "odd"

        def __init__(self) -> None:
            self.level = "info"

        def load(self) -> Layer:
            return Layer("odd", {"level": self.level}, self.level)

        def watch(self, notify: Any) -> None:
            notified.append(notify)

    source = Odd()
    with sr.Reloader(App, [source], registry=CollectorRegistry()) as r:
        source.level = "debug"
        notified[0]("odd\n" + FORGED)
        for _ in range(500):  # the reload runs on the coalescer's thread
            if r.current.level == "debug":
                break
            time.sleep(0.01)
        assert r.current.level == "debug"
    assert all(m.isprintable() for m in lines.messages)
    assert any("(odd\\n" + FORGED + ")" in m for m in lines.messages), lines.messages


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_an_actor_with_a_newline_is_a_400_over_http(tmp_path: pathlib.Path) -> None:
    """`POST /overrides` with such an actor: 400 naming the field, nothing written."""
    cfg = tmp_path / "c.yaml"
    write_atomic(cfg, "level: info\n")
    r = sr.Reloader(App, [sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry(), state_dir=tmp_path / "s")
    with r:
        transport = httpx.ASGITransport(app=admin_app(r, token=TOKEN), client=("127.0.0.1", 50123))
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000", headers=headers) as c:
            for actor in ("alice\n" + FORGED, "\x1b[2J", "a\u2028b"):
                answer = await c.post("/overrides", json={"set": {"level": "debug"}, "actor": actor})
                assert answer.status_code == 400, answer.text
                assert answer.json()["error"].startswith('"actor" must be a string of printable text')
            assert r.current.level == "info" and r.workers is not None and r.workers.status() == []


def test_an_actor_with_a_newline_is_refused_by_the_cli_and_the_api(tmp_path: pathlib.Path) -> None:
    """`selreload set --actor` (and $SELRELOAD_ACTOR) and `workers.set/reload()`: one-line
    errors naming where the actor came from, nothing written."""
    state = tmp_path / "state"
    state.mkdir()
    out, err = io.StringIO(), io.StringIO()
    assert main(["set", "level=debug", "--state-dir", str(state), "--actor", "a\n" + FORGED], out=out, err=err) != 0
    assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("selreload: error: --actor: an actor must")
    cfg = tmp_path / "c.yaml"
    write_atomic(cfg, "level: info\n")
    with sr.Reloader(App, [sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry(), state_dir=state) as r:
        assert r.workers is not None
        with pytest.raises(ValueError, match="^overrides: actor must be printable"):
            r.workers.set({"level": "debug"}, actor="a\nb")
        with pytest.raises(ValueError, match="^workers.reload\\(\\): actor must be printable"):
            r.workers.reload(actor="a\x1bb")
        assert r.current.level == "info"


def test_a_command_another_process_wrote_is_logged_on_one_line(tmp_path: pathlib.Path, lines: Lines) -> None:
    """The control directory is written by other processes: a command whose actor holds a
    newline (written below the checks, as an older or hostile writer would) still runs,
    and its actor reaches the log, the result and the audit escaped."""
    cfg, audit = tmp_path / "c.yaml", tmp_path / "audit.jsonl"
    write_atomic(cfg, "level: info\n")
    r = sr.Reloader(
        App,
        [sr.YamlFile(cfg, watch=False)],
        registry=CollectorRegistry(),
        state_dir=tmp_path / "state",
        audit=sr.AuditLog(audit),
    )
    seen: list[sr.ReloadResult] = []
    r.subscribe(seen.append)
    with r:
        write_atomic(cfg, "level: debug\n")
        StateDir(tmp_path / "state").write_command("reload", actor="mallory\n" + FORGED)
        for _ in range(500):
            if r.current.level == "debug":
                break
            time.sleep(0.01)
        assert r.current.level == "debug"
    assert seen and seen[-1].actor == "mallory\\n" + FORGED
    _one_line_everywhere(lines, seen[-1], audit)
    assert any("by mallory\\n" + FORGED in m for m in lines.messages), lines.messages


def test_audit_show_prints_an_edited_record_on_its_own_lines(tmp_path: pathlib.Path) -> None:
    """A record edited by hand to hold escape codes and newlines: `audit show` prints it
    escaped, one line per change, under its TAMPERED mark; raw, `\\x1b[1A\\x1b[2K` could
    have moved the cursor up and erased that mark."""
    record = {
        "ts": "2026-12-03T00:00:00+00:00",
        "config": "default\x1b[1A\x1b[2K",
        "actor": "mallory\n" + FORGED,
        "outcome": "applied",
        "trigger": "manual\r",
        "changes": [{"path": "a\x1b[2J", "old": "x", "new": "y", "action": "apply"}],
        "errors": ["bad\nline"],
        "prev_hash": "0" * 64,
        "hash": "1" * 64,
    }
    log = tmp_path / "audit.jsonl"
    log.write_text(json.dumps(record) + "\n")
    out, err = io.StringIO(), io.StringIO()
    main(["audit", "show", str(log)], out=out, err=err)
    lines = out.getvalue().splitlines()
    assert all(line.isprintable() for line in lines), lines
    assert lines[0].startswith("-- line 1: TAMPERED")
    assert len(lines) == 4 and "actor=mallory\\n" + FORGED in lines[1] and "a\\x1b[2J" in lines[2]


def test_a_status_record_another_instance_wrote_is_shown_on_one_line() -> None:
    """`fleet status` reads what every instance wrote to etcd: a hostile record's text is
    escaped in the row and the table, which stays one line per instance."""
    from selreload._fleet import FleetRow, FleetStatus

    body = json.dumps(
        {
            "instance": "web-1\x1b[2J",
            "outcome": "applied\n" + FORGED,
            "errors": ["e1\nforged", "\x07"],
            "health": "ok\r",
            "digest": "ab\x1b",
            "revision": 3,
        }
    ).encode()
    row = FleetRow.parse("web-1", body)
    shown = (row.instance, row.outcome, row.health or "", row.digest or "", *row.errors)
    assert all(text.isprintable() for text in shown), shown
    table = FleetStatus("app", 3, (row,), "rollout x\ny").render()
    assert all(line.isprintable() for line in table.splitlines())
    assert len(table.splitlines()) == 4  # the rollout line, the header, the row, the summary


@given(rows=st.lists(st.lists(st.text(max_size=6), min_size=3, max_size=3), min_size=1, max_size=4))
def test_a_table_is_one_printable_line_per_row(rows: list[list[str]]) -> None:
    """Whatever its cells hold."""
    from selreload._text import table

    lines = table(rows).split("\n")
    assert len(lines) == len(rows) and all(line.isprintable() for line in lines)

"""Mutated documents and env values never escape `reload()`, never go live invalid, and never
show the secret: every reload returns an Outcome, in well under a second."""

from __future__ import annotations

import datetime
import enum
import json
import pathlib
import random
import tempfile
import time
from collections.abc import Callable
from typing import Any, Literal

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from test_yaml_fast import reference, same

import selreload as sr
from selreload import _ryml
from selreload.sources._json import Entries, _no_duplicates

MARKER = "Zq7MARKERs3cr3t"


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@sr.config
class Db:
    host: str = sr.restart_only(default="db.local")
    password: str = sr.secret(default="")
    pool: int = sr.hot(default=4, validator=attrs.validators.ge(1))


@sr.config
class App:
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning", "error"]))
    ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(minutes=15))
    ratio: float = sr.hot(default=0.5)
    port: int = sr.restart_only(default=8080)
    db: Db = sr.field(factory=Db)
    flags: dict[str, bool] = sr.hot(factory=dict)
    tags: list[str] = sr.hot(factory=list)
    mode: Mode = sr.hot(default=Mode.FAST)  # enum and Literal fields: choices met by any value
    size: Literal[1, 2, 4] = sr.hot(default=1)


DOCS = {
    "yaml": (
        "level: debug\nttl: 30m\nratio: 0.25\nport: 8080\n"
        f'db:\n  host: db.local\n  password: "{MARKER}"\n  pool: 8\n'
        "flags:\n  new_checkout: true\n  beta: false\ntags: [a, b]\nmode: safe\nsize: 2\n"
    ),
    "json": json.dumps(
        {
            "level": "debug",
            "ttl": "30m",
            "ratio": 0.25,
            "port": 8080,
            "db": {"host": "db.local", "password": MARKER, "pool": 8},
            "flags": {"new_checkout": True, "beta": False},
            "tags": ["a", "b"],
            "mode": "safe",
            "size": 2,
        },
        indent=2,
    ),
    "toml": (
        'level = "debug"\nttl = "30m"\nratio = 0.25\nport = 8080\ntags = ["a", "b"]\nmode = "safe"\nsize = 2\n'
        f'[db]\nhost = "db.local"\npassword = "{MARKER}"\npool = 8\n'
        "[flags]\nnew_checkout = true\nbeta = false\n"
    ),
}
ENV = {
    "FZ_LEVEL": "debug",
    "FZ_TTL": "30m",
    "FZ_RATIO": "0.25",
    "FZ_DB__PASSWORD": MARKER,
    "FZ_FLAGS": '{"new_checkout": true}',
    "FZ_TAGS": '["a", "b"]',
    "FZ_MODE": "safe",
    "FZ_SIZE": "2",
}
HOSTILE = [
    "!!int ",
    "!!bool maybe",
    "!!python/object:os.system ",
    "!foo ",
    "&a ",
    "*a",
    "&a [*a, *a]",
    "[" * 60,
    "{" * 60,
    "]",
    "}",
    ".inf",
    "-.inf",
    ".nan",
    "NaN",
    "Infinity",
    "1e999",
    "9" * 5000,
    "\\ud800",
    "\ud800",
    "\ufeff",
    "\x00",
    "<<: *a",
    '"',
    "'",
    "'''",
    '"""',
    "\t",
    "\n  - ",
    ": ",
    "? ",
    "---\n",
    "%YAML 1.1\n",
    "!!timestamp 2020-99-99",
    "!!binary ====",
    "!!set {a}",
    "0x",
    "1979-05-27T07:32:00",
    "null",
    "~",
]

Op = tuple[str, int, int, str]
ops = st.tuples(
    st.sampled_from(["flip", "truncate", "insert", "insert_value", "duplicate_line", "delete"]),
    st.integers(0, 10_000),
    st.integers(0, 255),
    st.sampled_from(HOSTILE),
)


def mutate(text: str, operations: list[Op]) -> str:
    """Apply each operation (kind, position, byte, token) to `text`."""
    for kind, pos, byte, token in operations:
        at = pos % (len(text) + 1)
        if kind == "flip":
            text = text[:at] + chr(byte) + text[at + 1 :]
        elif kind == "truncate":
            text = text[:at]
        elif kind == "insert":
            text = text[:at] + token + text[at:]
        elif kind == "insert_value":
            # Before a value: after a `: `, `= ` or `[`, where a tag or anchor means something.
            spots = [i + 2 for i in range(len(text) - 1) if text[i : i + 2] in (": ", "= ")] or [at]
            spot = spots[pos % len(spots)]
            text = text[:spot] + token + " " + text[spot:]
        elif kind == "duplicate_line":
            lines = text.splitlines(keepends=True) or [""]
            i = pos % len(lines)
            lines.insert(i, lines[(i + byte) % len(lines)])
            text = "".join(lines)
        else:
            text = text[:at] + text[at + byte % 8 :]
    return text


@attrs.define
class Harness:
    """A started Reloader on one source, rewritten for every case."""

    reloader: sr.Reloader[App]
    write: Callable[[str], None]
    # Issues that show the marker because a mutation moved it into a plain field.
    plain: set[str] = attrs.field(factory=set)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def harness(fmt: str, root: pathlib.Path) -> Harness:
    """A Reloader with `watch=False` sources and an audit log: a file, or env values."""
    audit = sr.AuditLog(root / "audit.jsonl")
    if fmt == "env":
        environ = dict(ENV)
        source: Any = sr.Env(prefix="FZ_", environ=environ)

        def write(text: str) -> None:
            environ.clear()
            environ.update(ENV)
            values = text.split("\x1e")
            for key, value in zip(ENV, values, strict=False):
                environ[key] = value

    else:
        path = root / f"config.{fmt}"
        path.write_text(DOCS[fmt])
        source = {"yaml": sr.YamlFile, "json": sr.JsonFile, "toml": sr.TomlFile}[fmt](path, watch=False)

        def write(text: str) -> None:
            path.write_bytes(_encode(text))

    reloader = sr.Reloader(App, [source], registry=CollectorRegistry(), audit=audit)
    reloader.start()
    return Harness(reloader, write)


def original(fmt: str) -> str:
    return "\x1e".join(ENV.values()) if fmt == "env" else DOCS[fmt]


# What the error boundary (`_boundary`) and the structurer's last resort say when something
# raised that no rule foresaw: each is a defect, even though the reload ended INVALID.
SAFETY_NETS = ("failed unexpectedly", "please report it")


def defects(h: Harness, text: str) -> list[str]:
    """Run one case; return what went wrong (empty when nothing did)."""
    h.write(text)
    # CPU time of this thread (the reload runs on it: unwatched sources), so a busy machine
    # does not make a fast case look slow; the wall clock only catches a hang.
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        result = h.reloader.reload()
    except BaseException as exc:  # noqa: BLE001 - the defect being looked for
        return [f"reload() raised {type(exc).__name__}: {exc!r}"[:300]]
    elapsed, cpu = time.perf_counter() - t0, time.thread_time() - c0
    found = [f"a safety net caught: {e}" for e in result.errors if any(net in e.message for net in SAFETY_NETS)]
    if not isinstance(result.outcome, sr.Outcome):
        found.append(f"undefined outcome {result.outcome!r}")
    try:
        attrs.validate(h.reloader.current)
    except Exception as exc:  # noqa: BLE001
        found.append(f"an invalid config is live: {exc!r}")
    # The marker may be shown only where a mutation moved it into a plain field (`ratio:
    # <marker>` is a wrong number, not a secret) or into a key's name (`password"<marker>:`
    # is an unknown key); never by a parser or a db.* issue.
    for e in result.errors:
        if MARKER in str(e):
            if MARKER not in e.path and (not e.path or e.path.startswith("db")):
                found.append(f"the secret is shown: {e}")
            else:
                h.plain.add(str(e))
    # The same for a change's value: a plain (not secret) field that a mutation filled with
    # text holding the marker (`host: db.  password  "<marker>"`) is shown as typed.
    for change in (*result.applied, *result.rejected):
        if not change.secret:
            h.plain.update(v for v in (change.old, change.new) if isinstance(v, str) and MARKER in v)
    status = json.dumps(h.reloader.status(), default=str)
    for where, shown in [("str(result)", str(result)), ("status()", status)]:
        for allowed in h.plain:
            # As a change renders it: JSON-quoted, non-ASCII kept (`"db.al¶ \"<marker>\""`).
            for form in (repr(allowed), json.dumps(allowed)[1:-1], json.dumps(allowed, ensure_ascii=False)[1:-1]):
                shown = shown.replace(form, "")
            shown = shown.replace(allowed, "")
        if MARKER in shown:
            found.append(f"the secret is in {where}: {shown[:300]}")
    # Every issue is one printable line: it becomes a log line (a newline in one forged one).
    found += [f"issue not one printable line: {e!r}"[:300] for e in map(str, result.errors) if not e.isprintable()]
    if cpu > 1.0 or elapsed > 10.0:
        found.append(f"took {cpu:.2f} s of CPU ({elapsed:.2f} s wall)")
    return found


FORMATS = ["yaml", "json", "toml", "env"]
_HARNESSES: dict[str, Harness] = {}


def _harness(fmt: str) -> Harness:
    # One Reloader per format for the whole run: a case is one more reload on a live
    # reloader, as in production (hypothesis runs every example in one test call).
    if fmt not in _HARNESSES:
        _HARNESSES[fmt] = harness(fmt, pathlib.Path(tempfile.mkdtemp(prefix=f"fuzz-{fmt}-")))
    return _HARNESSES[fmt]


@pytest.fixture(scope="module", autouse=True)
def _stop_harnesses() -> Any:
    yield
    for h in _HARNESSES.values():
        h.reloader.stop()
    _HARNESSES.clear()


def cut_defects(sections: _ryml.Sections, text: str) -> list[str]:
    """The YAML entry cut's reading of `text` against ruamel's, type for type (None is
    fine: declined, ruamel decides). A source cuts only from 2 kB; `sections` should cut
    at every size (`min_size=0`) and be kept across cases, so most entries are reused."""
    try:
        tree = _ryml.fast_tree(text, sections)
    except Exception as exc:  # noqa: BLE001 - the defect being looked for
        return [f"the YAML cut raised {type(exc).__name__}: {exc!r}"[:300]]
    if tree is None:
        return []
    ok, ref = reference(text)
    if not ok:
        return [f"the YAML cut accepted what ruamel refuses: {ref!r}"[:300]]
    return [] if same(tree, ref) else [f"the YAML cut read {tree!r}, ruamel {ref!r}"[:300]]


def json_cut_defects(entries: Entries, text: str) -> list[str]:
    """The JSON entry cut's reading of `text` against `json.loads`, type for type (None is
    fine: declined, the whole parse decides). `entries` should cut at every size
    (`min_size=0, min_entry=0`) and be kept across cases, so most entries are reused."""
    try:
        tree = entries.tree(text)
    except Exception as exc:  # noqa: BLE001 - the defect being looked for
        return [f"the JSON cut raised {type(exc).__name__}: {exc!r}"[:300]]
    try:
        ok, ref = True, json.loads(text, object_pairs_hook=_no_duplicates)
    except Exception as exc:  # noqa: BLE001 - refused: the cut must not have read it
        ok, ref = False, exc
    if tree is None:
        if ok:
            entries.parsed_whole(text, ref)
        return []
    if not ok:
        return [f"the JSON cut accepted what json refuses: {ref!r}"[:300]]
    return [] if same(tree, ref) else [f"the JSON cut read {tree!r}, json {ref!r}"[:300]]


_CUT = _ryml.Sections(min_size=0)
_JSON_CUT = Entries(min_size=0, min_entry=0)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(operations=st.lists(ops, min_size=1, max_size=4))
def test_mutated_input_never_escapes_or_leaks(fmt: str, operations: list[Op]) -> None:
    """Any mutation of a valid document (or env values) reloads to a defined Outcome, keeps a
    valid config live, never shows the secret, and takes under a second; a YAML one is read
    by the entry cut exactly as ruamel reads it, or left to ruamel, and a JSON one as
    `json.loads` reads it, or left to it."""
    h = _harness(fmt)
    text = mutate(original(fmt), operations)
    found = defects(h, text)
    if fmt == "yaml" and _ryml.parser() is not None:
        found += cut_defects(_CUT, text)
    if fmt == "json":
        found += json_cut_defects(_JSON_CUT, text)
    assert found == []


@pytest.mark.parametrize("text", ["\ud800debug", 'debug\x1e30m\x1e0.25\x1es\x1e{}\x1e["\\ud800"]'])
def test_env_lone_surrogate(text: str) -> None:
    """A lone surrogate in an `environ` value (not in os.environ), or as a JSON escape in an
    env value, is an issue: Env's digest and the audit writer raise on encoding it."""
    h = harness("env", pathlib.Path(tempfile.mkdtemp()))
    try:
        assert defects(h, text) == []
    finally:
        h.reloader.stop()


def test_huge_number_for_a_duration_or_float() -> None:
    """`ttl: 10**300` is an issue at ttl, not an exception caught by the safety net."""
    h = harness("yaml", pathlib.Path(tempfile.mkdtemp()))
    try:
        found = defects(h, DOCS["yaml"].replace("ttl: 30m", "ttl: " + "9" * 300))
        assert not found and "OverflowError" not in str(h.reloader.status())
    finally:
        h.reloader.stop()


def test_env_int_over_the_digit_limit() -> None:
    """JSON in an env value with a number over Python's 4,300-digit limit is an issue at its
    variable, not an exception caught by the safety net."""
    h = harness("env", pathlib.Path(tempfile.mkdtemp()))
    try:
        defects(h, "\x1e".join(["debug", "30m", "0.25", MARKER, '{"a": ' + "9" * 5000 + "}"]))
        assert "ValueError" not in str(h.reloader.status())
    finally:
        h.reloader.stop()


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_original_documents_are_valid(fmt: str) -> None:
    """The documents mutated above are themselves valid, so mutations start from a good state."""
    h = harness(fmt, pathlib.Path(tempfile.mkdtemp()))
    try:
        h.write(original(fmt))
        assert h.reloader.reload().outcome in (sr.Outcome.UNCHANGED, sr.Outcome.APPLIED)
        assert h.reloader.current.db.password == MARKER
    finally:
        h.reloader.stop()


def test_known_defects_from_the_issue() -> None:
    """The inputs the issue's fuzz run found, each INVALID without the raw value or the text."""
    cases = {
        "yaml": ["flags:\n  beta: !!bool maybe\n", f"db:\n  password: !!int {MARKER}\n", "tags: [a, b\nlevel: info\n"],
        "json": ['{"flags": {"b": true, "b": false}, "tags"', '{"tags": [1, 2'],
        "toml": ['tags = ["a", "b"\nlevel = "info"\n', f'[db]\npassword = "{MARKER}\n'],
    }
    for fmt, texts in cases.items():
        h = harness(fmt, pathlib.Path(tempfile.mkdtemp()))
        try:
            for text in texts:
                assert defects(h, text) == []
                assert h.reloader.status()["last_outcome"] in ("invalid", sr.Outcome.INVALID), text
        finally:
            h.reloader.stop()


def random_operations(rng: random.Random) -> list[Op]:
    """The strategy's shape without hypothesis, for `benchmarks/fuzz_long.py`."""
    kinds = ["flip", "truncate", "insert", "insert_value", "duplicate_line", "delete"]
    return [
        (rng.choice(kinds), rng.randrange(10_000), rng.randrange(256), rng.choice(HOSTILE))
        for _ in range(rng.randint(1, 4))
    ]

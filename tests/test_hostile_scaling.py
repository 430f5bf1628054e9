"""Hostile input that is cheap to write and was expensive to read: every piece of text a
reload looks at is scanned in time linear in its length.

Each case here was quadratic before (regexes that, from every position of a long run,
read the rest of the run before failing) or crashed the process (compact block nesting
deep enough to exhaust the C stack of the YAML loader). Found by
`benchmarks/fuzz_long.py` and a scaling audit of every value slot; the cases below are
half a MiB to a MiB, where the quadratic versions took minutes and linear ones take
milliseconds. The bound of 2 s of CPU per reload is there to fail, not to measure.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload import _mask, _ryml, _values, _yaml


@sr.config
class Svc:
    name: str = sr.hot(default="svc")
    ttl: datetime.timedelta = sr.hot(default=datetime.timedelta(minutes=15))
    dsn: str = sr.hot(default="")
    extra: dict[str, object] = sr.hot(factory=dict)


MiB = 1 << 20
HOSTILE = {
    # 4.8 s at 128 KiB before: a bracket in flow context scanned the rest of its line for `#`.
    "[] in a quoted string": "name: '" + "[]" * (MiB // 4) + "'\n",
    "{} in a comment": "name: x\n# " + "{}" * (MiB // 4) + "\n",
    # 2.1 s at 10,000 digits: every start of the digits was tried as a Go duration part.
    "a 500,000-digit duration": "ttl: " + "9" * (MiB // 2) + "\n",
    "digits and a bad unit": "ttl: '" + "1h" * (MiB // 8) + "9" * (MiB // 4) + "x'\n",
    # 0.2 s at 16,000 characters: every letter of `a.a.a.` was tried as a URL scheme.
    "a long run of scheme characters": "dsn: 'x://" + "a." * (MiB // 4) + "'\n",
    "scheme characters before a userinfo": "dsn: '" + "a." * (MiB // 4) + "x://u:p@h/'\n",
    # Quoted text in a parser problem: from every space of a run, `\s*` read to its end.
    "a duplicate key of spaces": 'extra:\n  "' + " " * (MiB // 4) + '": 1\n  "' + " " * (MiB // 4) + '": 2\n',
    # 1.9 s on these 3.9 MiB: the compact-nesting check read up to 100 `- ` from every `- `.
    "lines of 100 compact entries": "extra:\n  x: |\n" + ("    " + "- " * 100 + "x\n") * 20_000,
}


@pytest.mark.parametrize("label", list(HOSTILE))
def test_hostile_text_is_read_in_linear_time(tmp_path: pathlib.Path, label: str) -> None:
    """The reload ends (applied or refused with a message), the audit line is written and
    the result renders, all within 2 s of CPU."""
    path = tmp_path / "config.yaml"
    path.write_text("name: live\n")
    audit = tmp_path / "audit.jsonl"
    reloader = sr.Reloader(
        Svc, [sr.YamlFile(path, watch=False)], registry=CollectorRegistry(), audit=sr.AuditLog(audit)
    )
    with reloader:
        path.write_text(HOSTILE[label])
        t0 = time.thread_time()
        result = reloader.reload()
        shown = str(result) + json.dumps(reloader.status(), default=str)
        cpu = time.thread_time() - t0
    assert result.outcome in (sr.Outcome.APPLIED, sr.Outcome.INVALID), shown[:300]
    assert result.outcome is sr.Outcome.APPLIED or result.errors
    assert audit.read_text().count("\n") == 2  # start, then this attempt
    assert cpu < 2.0, f"{label}: {cpu:.2f} s of CPU"


@pytest.mark.parametrize("unit", ["? ", "- ? ", "? - ", "- - "])
def test_compact_block_nesting_is_refused_before_the_parser_sees_it(tmp_path: pathlib.Path, unit: str) -> None:
    """40,000 levels on one line: `? ` crashed the process (a segmentation fault in the C
    loader, no Python exception). In a child process, so a crash fails this test alone."""
    path = tmp_path / "config.yaml"
    path.write_text("extra:\n  " + unit * 40_000 + "x\n")
    code = f"import sys, selreload as sr\nprint(sr.YamlFile({str(path)!r}, watch=False).load())\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, (run.returncode, run.stderr[-500:])
    assert "too deeply nested: more than 100 levels" in run.stderr, run.stderr[-500:]


def test_compact_indicators_inside_text_are_not_nesting(tmp_path: pathlib.Path) -> None:
    """The check looks at line starts only: 200 `- ` or `? ` inside a quoted value or a
    comment are text, and load."""
    path = tmp_path / "config.yaml"
    path.write_text("name: '" + "- " * 200 + "'\n# " + "? " * 200 + '\nextra:\n  q: "' + "? - " * 200 + '"\n')
    reloader = sr.Reloader(Svc, [sr.YamlFile(path, watch=False)], registry=CollectorRegistry())
    with reloader:
        assert reloader.current.name == "- " * 200
        assert reloader.current.extra["q"] == "? - " * 200


# --- the linear scans answer as the regexes they replace --------------------------------------

_OLD_USERINFO = re.compile(_mask._USERINFO.pattern)
_URLISH = st.lists(
    st.sampled_from(["a", "Z", "1", ".", "+", "-", "_", ":", "/", "://", "@", " ", "?", "#", "é", "u:p@", "\n"])
)


@settings(max_examples=2000, deadline=None)
@given(_URLISH.map("".join))
def test_userinfo_matches_are_the_regexes(text: str) -> None:
    """Same matches, same spans, same masked text as `finditer`/`sub` over the whole text."""
    old = [(m.span(), m["password"]) for m in _OLD_USERINFO.finditer(text)]
    assert [(m.span(), m["password"]) for m in _mask._userinfo(text)] == old
    masked = _OLD_USERINFO.sub(lambda m: m["head"] + _mask.MASK if m["password"] else m[0], text)
    assert _mask.mask_url(text) == masked
    assert _mask.url_passwords(text) == [p for _, p in old if p]


_OLD_FLOW_COLON = re.compile(r":[^\s]|[\[{][^\n]*#|\?")


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(list("[]{}#:? \na-\t"))).map("".join))
def test_the_flow_check_answers_as_before(text: str) -> None:
    assert (_ryml._FLOW_COLON.search(text) is None) == (_OLD_FLOW_COLON.search(text) is None)


_OLD_QUOTED = re.compile(r"""\s*(?:'[^']*'|"[^"]*")""")


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from([" ", "\t", "\n", "'", '"', "a", "[", ":", "'['", "\u2028"])).map("".join))
def test_quoted_text_is_found_as_before(text: str) -> None:
    assert _yaml._QUOTED.sub("", text) == _OLD_QUOTED.sub("", text)
    assert _yaml.problem_text(text) == _problem_text_before(text)


def _problem_text_before(text: str) -> str:
    if not text:
        return "invalid syntax"
    kept = _OLD_QUOTED.sub(lambda m: m.group() if _yaml._TOKEN.fullmatch(m.group()) else "", text)
    unframed = _OLD_QUOTED.sub("", kept)
    if "'" in unframed or '"' in unframed:
        kept = kept[: min(i for i in (kept.find("'"), kept.find('"')) if i >= 0)]
    return kept.strip()[:120] or "invalid syntax"


def _go_seconds_before(body: str) -> Any:
    pos, seconds = 0, 0.0
    for m in _values._GO_PART.finditer(body):
        if m.start() != pos:
            return None
        seconds += float(m["n"]) * _values._UNIT_SECONDS[m["u"]]
        pos = m.end()
    return seconds if pos == len(body) else None


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(st.sampled_from(["1", "90", "1.5", ".", "h", "m", "s", "ms", "us", "µs", "d", "w", "x", " "])).map("".join)
)
def test_go_durations_read_as_before(body: str) -> None:
    if body and not _values._SECONDS_TEXT.fullmatch(body) and body[0] not in "Pp":
        assert _values._text_seconds(body) == _go_seconds_before(body)

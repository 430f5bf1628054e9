"""Override entries as anyone who can write the control directory may leave them: odd
paths, values, actors, timestamps and expiries. Each reload ends in an outcome, never an
exception; the secret shows nowhere; and the worker stays healthy (an expiry in the year
9999 killed the expiry thread, which `status()` then reported)."""

from __future__ import annotations

import json
import pathlib

import pytest
from prometheus_client import CollectorRegistry

import selreload as sr
from tests.conftest import write_atomic

SECRET = "s3cr3t-overrides-hostile"
NEW_SECRET = "n3w-s3cr3t-in-an-override"
PATHS = [
    "a..b", "[0]", "tags[999999999]", "tags[0]", "level.x", "." * 1000, "a." * 5000 + "b", "limits.\ud800",
    "limits." + "x" * 100_000, "tags[-1]", "tags[01]", "level[0]", "limits.a.b", "limits[0]", "key", " level", "LEVEL",
]  # fmt: skip
VALUES = [1, "x", None, [1] * 10, {"a": {"b": 1}}, "\ud800", 10**100, 1e308, True]
STAMPS = [None, 5, "bad", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59+00:00"]
ENTRIES = (
    [{"path": p, "value": v, "actor": "t", "ts": STAMPS[5], "expires": None} for p in PATHS for v in VALUES]
    + [
        {"path": "level", "value": "debug", "actor": actor, "ts": ts, "expires": expires}
        for actor in (None, 5, "\ud800", "x" * 100_000, {"a": 1})
        for ts in STAMPS[:3]
        for expires in STAMPS
    ]
    + [{"path": "key", "value": NEW_SECRET, "actor": "t", "ts": STAMPS[5], "expires": None}]
)


@sr.config
class App:
    level: str = sr.hot(default="info")
    tags: list[str] = sr.hot(factory=list)
    limits: dict[str, int] = sr.hot(factory=dict)
    key: str = sr.secret(default="")


@pytest.mark.slow
def test_hostile_override_entries(tmp_path: pathlib.Path) -> None:
    cfg = tmp_path / "config.yaml"
    write_atomic(cfg, f"level: info\nkey: {SECRET}\n")
    state = tmp_path / "state"
    reloader = sr.Reloader(
        App, [sr.YamlFile(cfg, watch=False)], registry=CollectorRegistry(), state_dir=state, instance="w0"
    )
    with reloader:
        for entry in ENTRIES:
            (state / "overrides.json").write_text(json.dumps({"seq": 1, "entries": [entry]}))
            result = reloader.reload()
            assert result.outcome in sr.Outcome, entry
            shown = repr(result) + json.dumps(reloader.status(), default=str)
            assert SECRET not in shown and NEW_SECRET not in shown, (entry["path"][:40], entry["value"])
            assert "failed unexpectedly" not in shown and "please report it" not in shown, (entry["path"][:40], shown)
            assert reloader.status()["healthy"], (repr(entry)[:200], reloader.status())
            assert reloader.current.key == SECRET  # a secret is never taken from an override

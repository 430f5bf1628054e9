"""OpenTelemetry spans read back from an in-memory exporter: one `selreload.reload` per
attempt with its attributes, `selreload.apply`/`selreload.rollback` children, ERROR status
on failures, and nothing at all without a provider."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload._identity import default_instance


@sr.config
class App:
    port: int = sr.restart_only(default=8080)
    level: str = sr.hot(default="info", validator=attrs.validators.in_(["debug", "info", "warning"]))
    workers: int = sr.hot(default=4)


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Save like a careful editor: temp file, then rename over."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Step:
    """An applier that can be told to fail on apply or rollback (a fault we cannot cause
    with a real side effect)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fail_apply = False
        self.fail_rollback = False

    def apply(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.fail_apply:
            raise ValueError("apply refused")

    def rollback(self, changes: Sequence[sr.Change], snapshot: sr.Snapshot[Any]) -> None:
        if self.fail_rollback:
            raise OSError("rollback refused")


class Traced:
    """A started Reloader on a real YAML file, traced into an in-memory exporter."""

    def __init__(self, tmp_path: pathlib.Path) -> None:
        self.path = tmp_path / "config.yaml"
        write_atomic(self.path, "level: info\n")
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reloader = sr.Reloader(
            App, sources=[sr.YamlFile(self.path, watch=False)], registry=CollectorRegistry(), tracer_provider=provider
        )
        self.first, self.second = Step("first"), Step("second")
        self.reloader.on("level", self.first)
        self.reloader.on("workers", self.second)
        self.reloader.start()
        self.exporter.clear()

    def reload(self, text: str) -> tuple[sr.ReloadResult, ReadableSpan, list[ReadableSpan]]:
        """Reload `text`; return the result, its reload span and that span's children."""
        write_atomic(self.path, text)
        result = self.reloader.reload(trigger="file")
        spans = self.exporter.get_finished_spans()
        roots = [s for s in spans if s.name == "selreload.reload"]
        assert len(roots) == 1
        root = roots[0]
        children = [s for s in spans if s is not root]
        for child in children:
            assert child.parent is not None and child.parent.span_id == root.context.span_id
            assert child.context.trace_id == root.context.trace_id
        self.exporter.clear()
        return result, root, children


@pytest.fixture
def traced(tmp_path: pathlib.Path) -> Traced:
    return Traced(tmp_path)


def names(spans: Sequence[ReadableSpan]) -> list[tuple[str, str]]:
    return [(s.name, str((s.attributes or {})["selreload.applier"])) for s in spans]


def test_start_is_one_reload_span_with_an_apply_child_per_applier(tmp_path: pathlib.Path) -> None:
    """start() is traced as a `selreload.reload` (trigger start) whose children are the
    initial `selreload.apply` calls."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    path = tmp_path / "config.yaml"
    write_atomic(path, "level: info\n")
    r = sr.Reloader(
        App, sources=[sr.YamlFile(path, watch=False)], registry=CollectorRegistry(), tracer_provider=provider
    )
    r.on("level", Step("first"))
    r.start()
    apply, root = exporter.get_finished_spans()
    assert root.name == "selreload.reload"
    assert dict(root.attributes or {}) == {
        "selreload.trigger": "start",
        "selreload.instance": r.instance,
        "selreload.version": 1,
        "selreload.outcome": "applied",
        "selreload.changes": 0,
    }
    assert apply.name == "selreload.apply" and apply.parent is not None
    assert apply.parent.span_id == root.context.span_id


def test_applied_reload_span(traced: Traced) -> None:
    """An applied reload: attributes trigger, version, outcome, change count; one apply
    child per applier that got changes, in registration order; status unset."""
    result, root, children = traced.reload("level: debug\nworkers: 8\nport: 9090\n")
    assert result.outcome is sr.Outcome.APPLIED
    assert dict(root.attributes or {}) == {
        "selreload.trigger": "file",
        "selreload.instance": default_instance(),
        "selreload.version": 2,
        "selreload.outcome": "applied",
        "selreload.changes": 3,
        "selreload.rejected": 1,
    }
    assert root.status.status_code is StatusCode.UNSET
    assert names(children) == [("selreload.apply", "first"), ("selreload.apply", "second")]
    assert all(c.status.status_code is StatusCode.UNSET for c in children)


def test_only_the_appliers_with_changes_get_a_span(traced: Traced) -> None:
    """An applier whose paths did not change is not called, so it has no span."""
    _, _, children = traced.reload("level: info\nworkers: 8\n")
    assert names(children) == [("selreload.apply", "second")]


def test_unchanged_reload_span(traced: Traced) -> None:
    """An unchanged reload still has its span, with no children and no error."""
    result, root, children = traced.reload("level: info\n")
    assert result.outcome is sr.Outcome.UNCHANGED
    assert (root.attributes or {})["selreload.outcome"] == "unchanged"
    assert (root.attributes or {})["selreload.changes"] == 0
    assert children == []
    assert root.status.status_code is StatusCode.UNSET


def test_rejected_reload_span(traced: Traced) -> None:
    """A restart-only change: outcome rejected, counted in changes, no appliers, no error."""
    result, root, children = traced.reload("level: info\nport: 9090\n")
    assert result.outcome is sr.Outcome.REJECTED
    attrs_ = dict(root.attributes or {})
    assert (attrs_["selreload.outcome"], attrs_["selreload.changes"], attrs_["selreload.version"]) == (
        "rejected",
        1,
        1,
    )
    assert children == []
    assert root.status.status_code is StatusCode.UNSET


def test_invalid_reload_span_has_error_status_naming_the_place(traced: Traced) -> None:
    """An invalid file: outcome invalid, status ERROR whose description is the error
    with its file:line:col."""
    result, root, children = traced.reload("level: loud\n")
    assert result.outcome is sr.Outcome.INVALID
    assert (root.attributes or {})["selreload.outcome"] == "invalid"
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description is not None
    assert "config.yaml:1:8: level: must be one of debug, info, warning" in root.status.description
    assert children == []


def test_rolled_back_reload_span(traced: Traced) -> None:
    """An applier failure: the failing apply span is ERROR (exception type only), the
    earlier applier is rolled back in a `selreload.rollback` child, the reload is ERROR."""
    traced.second.fail_apply = True
    result, root, children = traced.reload("level: debug\nworkers: 8\n")
    assert result.outcome is sr.Outcome.ROLLED_BACK
    assert names(children) == [
        ("selreload.apply", "first"),
        ("selreload.apply", "second"),
        ("selreload.rollback", "first"),
    ]
    ok, failed, rollback = children
    assert ok.status.status_code is StatusCode.UNSET
    assert (failed.status.status_code, failed.status.description) == (StatusCode.ERROR, "ValueError")
    assert rollback.status.status_code is StatusCode.UNSET
    assert root.status.status_code is StatusCode.ERROR
    assert "applier second failed" in (root.status.description or "")
    assert (root.attributes or {})["selreload.outcome"] == "rolled_back"
    assert all(not s.events for s in [root, *children])


def test_degraded_reload_span(traced: Traced) -> None:
    """A failed rollback too: the rollback span is ERROR and the reload is degraded/ERROR."""
    traced.second.fail_apply = True
    traced.first.fail_rollback = True
    result, root, children = traced.reload("level: debug\nworkers: 8\n")
    assert result.outcome is sr.Outcome.DEGRADED
    rollback = children[-1]
    assert (rollback.name, rollback.status.status_code, rollback.status.description) == (
        "selreload.rollback",
        StatusCode.ERROR,
        "OSError",
    )
    assert (root.attributes or {})["selreload.outcome"] == "degraded"
    assert root.status.status_code is StatusCode.ERROR
    assert "rollback of first failed" in (root.status.description or "")


def test_manual_rollback_is_traced(traced: Traced) -> None:
    """reloader.rollback(version) is a reload span with trigger rollback."""
    traced.reload("level: debug\n")
    traced.reloader.rollback(1)
    spans = traced.exporter.get_finished_spans()
    root = next(s for s in spans if s.name == "selreload.reload")
    assert (root.attributes or {})["selreload.trigger"] == "rollback"
    assert (root.attributes or {})["selreload.outcome"] == "applied"


_HEADER = """
import os, sys
import selreload as sr
from opentelemetry import trace
from prometheus_client import CollectorRegistry

@sr.config
class App:
    level: str = sr.hot(default="info")

path = sys.argv[1]
with open(path, "w") as fh:
    fh.write("level: info\\n")
r = sr.Reloader(App, sources=[sr.YamlFile(path, watch=False)], registry=CollectorRegistry())
"""


def _fresh(tmp_path: pathlib.Path, body: str, **env: str) -> str:
    """Run `body` after `_HEADER` (a Reloader `r` of a YAML file) in a fresh interpreter:
    the global tracer provider can be set once per process. Its stdout."""
    out = subprocess.run(
        [sys.executable, "-c", _HEADER + textwrap.dedent(body), str(tmp_path / "c.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_no_provider_means_no_spans_until_a_global_one_is_set(tmp_path: pathlib.Path) -> None:
    """With tracer_provider=None and no global provider, reloads create no span objects at
    all; once the app sets a global provider, the same Reloader starts tracing."""
    body = """
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        r.on("level", lambda changes, snapshot: None)
        seen = []
        with r._tracing.reload("probe") as span:
            seen.append(span)
        r.start()
        with open(path, "w") as fh:
            fh.write("level: debug\\n")
        assert r.reload().outcome is sr.Outcome.APPLIED
        assert seen == [None], seen
        assert r._tracing._tracer is None

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        with open(path, "w") as fh:
            fh.write("level: info\\n")
        assert r.reload().outcome is sr.Outcome.APPLIED
        print(sorted(s.name for s in exporter.get_finished_spans()))
        """
    assert _fresh(tmp_path, body) == "['selreload.apply', 'selreload.reload']"


def test_a_provider_named_by_the_environment_is_used(tmp_path: pathlib.Path) -> None:
    """OTEL_PYTHON_TRACER_PROVIDER names a provider that opentelemetry loads on first ask:
    a Reloader made before anything asked still traces with it (selreload reads the
    module's global first, and the environment when that names a provider)."""
    body = """
        r.start()
        print(type(r._tracing._tracer).__module__)
        """
    assert _fresh(tmp_path, body, OTEL_PYTHON_TRACER_PROVIDER="sdk_tracer_provider") == "opentelemetry.sdk.trace"

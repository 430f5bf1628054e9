"""Several appliers in one handoff: a transaction's calls go to the deadline worker together.

What must not change is everything the one-call-per-handoff path guarantees: the order of
applies and rollbacks, each call's own deadline, what a hung call leaves (nothing after it
runs, ever), each call's own copy of the caller's context, its span. The property below
runs the same transactions through both paths and compares what they did.
"""

from __future__ import annotations

import contextvars
import pathlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry

import selreload as sr
from selreload import _transaction
from selreload._change import Change
from selreload._routes import Route
from selreload._snapshot import Snapshot
from selreload._transaction import Deadline

TIMEOUT = 0.15
BEHAVIOURS = ("ok", "raise", "hang", "exit")


class Gate:
    """What a hung applier waits on; opened at the end of each test, so no thread leaks."""

    def __init__(self) -> None:
        self.open = threading.Event()

    def hang(self) -> None:
        self.open.wait(30)


class Scripted:
    """An applier whose apply and rollback each do what it is told; it journals every call
    as it starts, and once more when a call returns."""

    def __init__(self, name: str, journal: list[str], gate: Gate, apply: str, rollback: str) -> None:
        self.name = name
        self.journal = journal
        self.gate = gate
        self.behaviour = {"apply": apply, "rollback": rollback}

    def _do(self, kind: str) -> None:
        self.journal.append(f"{kind} {self.name}")
        what = self.behaviour[kind]
        if what == "raise":
            raise RuntimeError(f"{self.name} {kind} refuses")
        if what == "exit":
            raise SystemExit(3)
        if what == "hang":
            self.gate.hang()
            self.journal.append(f"late {kind} {self.name}")

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        self._do("apply")

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        self._do("rollback")


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.open.set()


def one_by_one(deadline: Deadline) -> Any:
    """The same deadline, without its `batched`: one handoff per call."""

    def call(fn: Any, *args: Any) -> None:
        deadline(fn, *args)

    return call


def transaction(script: list[tuple[str, str]], call: Any, gate: Gate) -> tuple[Any, list[str]]:
    journal: list[str] = []
    snap = Snapshot(object(), 1, "d", None, None)  # type: ignore[arg-type]
    change = (Change("x", 0, 1),)
    batches = [(Route("x", Scripted(f"a{i}", journal, gate, a, r), f"a{i}"), change) for i, (a, r) in enumerate(script)]
    result = _transaction.run(batches, snap, snap, call=call)
    return result, journal


def summary(result: Any) -> tuple[Any, ...]:
    raised = type(result.raised).__name__ if result.raised is not None else None
    return result.outcome, [str(e) for e in result.errors], result.failed, raised


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.sampled_from(BEHAVIOURS), st.sampled_from(BEHAVIOURS)), min_size=2, max_size=6).filter(
        lambda s: sum(a == "hang" for a, _ in s) + sum(r == "hang" for _, r in s) <= 2
    )
)
def test_together_does_what_one_by_one_does(gate: Gate, script: list[tuple[str, str]]) -> None:
    """Any mix of appliers that succeed, raise, exit or hang past the deadline, in apply
    and in rollback: the same calls in the same order, the same outcome, errors, failed
    appliers and what must propagate; and after the hung ones return, nothing more ran."""
    local = Gate()
    try:
        together, journal = transaction(script, Deadline(TIMEOUT, name="together"), local)
        alone, journal_alone = transaction(script, one_by_one(Deadline(TIMEOUT, name="alone")), local)
        assert journal == journal_alone
        assert summary(together) == summary(alone)
        seen = list(journal)
    finally:
        local.open.set()
    time.sleep(0.02)  # the hung calls return now: a late return adds its own line, no call
    assert [line for line in journal if not line.startswith("late ")] == seen


def test_each_call_has_its_own_deadline(gate: Gate) -> None:
    """Three appliers of 0.6 deadline each: the transaction takes longer than one deadline,
    no call does, so it applies."""
    slow = [("apply", f"a{i}", lambda *a: time.sleep(0.6 * TIMEOUT), ()) for i in range(3)]
    t0 = time.monotonic()
    outcomes = Deadline(TIMEOUT, name="t").run_all(slow, _transaction._no_span, stop=True)
    assert outcomes == [None, None, None]
    assert time.monotonic() - t0 > TIMEOUT


def test_a_hung_rollback_leaves_the_next_rollbacks_to_a_new_worker(gate: Gate) -> None:
    """The second rollback of three hangs: the third still runs (on a new worker thread),
    and the hung one is named; the first apply's failure is what aborted."""
    script = [("ok", "ok"), ("ok", "hang"), ("ok", "ok"), ("raise", "ok")]
    result, journal = transaction(script, Deadline(TIMEOUT, name="t"), gate)
    assert journal == ["apply a0", "apply a1", "apply a2", "apply a3", "rollback a2", "rollback a1", "rollback a0"]
    assert result.outcome is sr.Outcome.DEGRADED and result.failed == ("a3", "a1")
    assert "did not return within 0.15 s" in str(result.errors[1])


@sr.config
class Five:
    f0: int = sr.hot(default=0)
    f1: int = sr.hot(default=0)
    f2: int = sr.hot(default=0)
    f3: int = sr.hot(default=0)
    f4: int = sr.hot(default=0)


def five(tmp_path: pathlib.Path, text: str, **kwargs: Any) -> tuple[sr.Reloader[Five], pathlib.Path]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    r = sr.Reloader(Five, [sr.YamlFile(path, watch=False)], registry=CollectorRegistry(), **kwargs)
    return r, path


ALL = "f0: 1\nf1: 1\nf2: 1\nf3: 1\nf4: 1\n"


def test_a_reload_whose_third_applier_hangs(tmp_path: pathlib.Path, gate: Gate) -> None:
    """Five appliers, the third hangs: DEGRADED after its deadline, the two before it rolled
    back newest first, the two after it never called (not even once it returns), the lock
    released; the next reload applies."""
    r, path = five(tmp_path, "f0: 0\n", applier_timeout=0.3)
    journal: list[str] = []
    hang = {"on": False}
    for i in range(5):

        def applier(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Five], i: int = i) -> None:
            journal.append(f"a{i} {changes[0].old}->{changes[0].new}")
            if i == 2 and hang["on"]:
                gate.hang()

        r.on(f"f{i}", applier, name=f"a{i}")
    r.start()
    journal.clear()
    hang["on"] = True
    path.write_text(ALL)
    t0 = time.monotonic()
    result = r.reload()
    assert 0.3 <= time.monotonic() - t0 < 3
    assert result.outcome is sr.Outcome.DEGRADED
    assert result.failed == ("a2",) and "did not return within 0.3 s" in str(result.errors[0])
    assert journal == ["a0 0->1", "a1 0->1", "a2 0->1", "a1 1->0", "a0 1->0"]
    assert r.current.f0 == 0 and r.status()["healthy"] is False
    gate.open.set()
    time.sleep(0.1)
    assert len(journal) == 5  # a3 and a4 never ran, after the hung call returned either
    hang["on"] = False
    journal.clear()
    assert r.reload().outcome is sr.Outcome.APPLIED
    assert journal == [f"a{i} 0->1" for i in range(5)] and r.status()["healthy"] is True


def test_each_applier_gets_its_own_copy_of_the_callers_context(tmp_path: pathlib.Path) -> None:
    """Each applier sees what the reload's thread set (a pin of the caller's, the "inside a
    reload" mark) and none sees what an applier before it set."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("test_var", default="unset")
    r, path = five(tmp_path, "f0: 0\n")
    seen: list[tuple[str, bool]] = []
    for i in range(5):

        def applier(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Five], i: int = i) -> None:
            seen.append((var.get(), r._inside()))
            var.set(f"set by a{i}")

        r.on(f"f{i}", applier, name=f"a{i}")
    r.start()
    seen.clear()
    path.write_text(ALL)
    var.set("the caller's")
    assert r.reload().outcome is sr.Outcome.APPLIED
    assert seen == [("the caller's", True)] * 5
    assert var.get() == "the caller's"


def test_spans_one_per_call_and_a_late_return_is_an_error(tmp_path: pathlib.Path, gate: Gate) -> None:
    """Each call its `selreload.apply`/`selreload.rollback` span under the reload span, in
    order; the span of a call that returns after its deadline ends then, status ERROR."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    r, path = five(tmp_path, "f0: 0\n", applier_timeout=0.3, tracer_provider=provider)
    hang = {"on": False}
    for i in range(3):

        def applier(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Five], i: int = i) -> None:
            if i == 2 and hang["on"]:
                gate.hang()

        r.on(f"f{i}", applier, name=f"a{i}")
    r.start()
    exporter.clear()
    path.write_text("f0: 1\nf1: 1\nf2: 0\n")
    assert r.reload().outcome is sr.Outcome.APPLIED
    spans = exporter.get_finished_spans()
    root = next(s for s in spans if s.name == "selreload.reload")
    steps = [(s.name, (s.attributes or {})["selreload.applier"]) for s in spans if s is not root]
    assert steps == [("selreload.apply", "a0"), ("selreload.apply", "a1")]
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in spans if s is not root)
    exporter.clear()
    hang["on"] = True
    path.write_text("f0: 2\nf1: 2\nf2: 2\n")
    assert r.reload().outcome is sr.Outcome.DEGRADED
    finished = exporter.get_finished_spans()
    done = [(s.name, (s.attributes or {})["selreload.applier"]) for s in finished if s.name != "selreload.reload"]
    assert done == [
        ("selreload.apply", "a0"),
        ("selreload.apply", "a1"),
        ("selreload.rollback", "a1"),
        ("selreload.rollback", "a0"),
    ]
    exporter.clear()
    gate.open.set()
    deadline = time.monotonic() + 5
    while not exporter.get_finished_spans() and time.monotonic() < deadline:
        time.sleep(0.01)
    (late,) = exporter.get_finished_spans()
    assert (late.name, (late.attributes or {})["selreload.applier"]) == ("selreload.apply", "a2")
    assert late.status.status_code is StatusCode.ERROR and late.status.description == "ApplierTimeoutError"


def test_an_applier_that_exits_stops_the_rest_and_propagates(tmp_path: pathlib.Path) -> None:
    """`sys.exit()` in the second of five appliers: the first is rolled back, the rest never
    run, the attempt is recorded, then SystemExit reaches the caller."""
    r, path = five(tmp_path, "f0: 0\n")
    journal: list[str] = []
    for i in range(5):

        def applier(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Five], i: int = i) -> None:
            journal.append(f"a{i} {changes[0].old}->{changes[0].new}")
            if i == 1 and changes[0].new == 1:
                raise SystemExit(4)

        r.on(f"f{i}", applier, name=f"a{i}")
    r.start()
    journal.clear()
    path.write_text(ALL)
    with pytest.raises(SystemExit):
        r.reload()
    assert journal == ["a0 0->1", "a1 0->1", "a0 1->0"]
    assert r.status()["last_outcome"] == "rolled_back" and r.current.f0 == 0


def test_async_and_sync_appliers_in_one_transaction_keep_their_order(tmp_path: pathlib.Path) -> None:
    """An async applier among sync ones: every call on its own (the coroutine on the loop),
    in registration order, rolled back newest first when the last one fails."""
    import asyncio

    journal: list[str] = []

    async def main() -> None:
        r, path = five(tmp_path, "f0: 0\n")

        def sync(i: int) -> Any:
            def applier(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Five]) -> None:
                journal.append(f"sync a{i} {changes[0].new}")
                if i == 3 and changes[0].new == 1:
                    raise RuntimeError("no")

            return applier

        async def coroutine(changes: Sequence[sr.Change], snapshot: sr.Snapshot[Five]) -> None:
            journal.append(f"async a1 {changes[0].new}")

        r.on("f0", sync(0), name="a0")
        r.on("f1", coroutine, name="a1")
        r.on("f2", sync(2), name="a2")
        r.on("f3", sync(3), name="a3")
        await r.astart()
        journal.clear()
        path.write_text(ALL)
        result = await r.areload()
        assert result.outcome is sr.Outcome.ROLLED_BACK
        r.stop()

    asyncio.run(main())
    assert journal == ["sync a0 1", "async a1 1", "sync a2 1", "sync a3 1", "sync a2 0", "async a1 0", "sync a0 0"]

"""The seams of the etcd split: the watch supervisor on a fake session, and who imports whom."""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import pathlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import selreload as sr
import selreload._etcd_client as etcd_client
import selreload._fleet as fleet
import selreload.sources._etcd as etcd_source
import selreload.sources._etcd_watch as etcd_watch
from selreload._etcd_client import KeyEvent, LoopThread
from selreload.sources._etcd_watch import Backoff, EtcdWatch

from .conftest import Kv
from .etcd_server import EtcdServer


def wait(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


class FakeSession:
    """A `KeySession` whose watches follow a script: each entry is the events one watch
    yields before it drops (`None`: it stays up until cancelled)."""

    def __init__(self, script: list[list[KeyEvent] | None], *, header: int = 10, fail_connect: bool = False) -> None:
        self.revision = 0
        self.connected = True
        self.script = list(script)
        self.header = header
        self.fail_connect = fail_connect
        self.gets = 0
        self.starts: list[int] = []
        self.leases: list[int] = []
        self.puts: list[tuple[str, dict[str, Any], int | None]] = []
        self.revoked: list[int] = []
        self.reconnects = 0
        self.closed = 0

    async def get(self, key: str) -> tuple[bytes | None, int, int]:
        self.gets += 1
        if self.fail_connect:
            raise ConnectionError("connection refused")
        self.revision = max(self.revision, self.header)
        return b"a: 1\n", 5, self.header

    async def watch(self, key: str, *, start_revision: int) -> AsyncIterator[KeyEvent]:
        self.starts.append(start_revision)
        events = self.script.pop(0) if self.script else None
        return self._events(events)

    async def _events(self, events: list[KeyEvent] | None) -> AsyncIterator[KeyEvent]:
        if events is None:
            await asyncio.Event().wait()  # up until the supervisor cancels it
        for event in events or ():
            self.revision = max(self.revision, event.revision)
            yield event
        await asyncio.sleep(0.05)  # the session is up (lease, status) when the stream drops
        raise ConnectionError("watch stream dropped")

    async def grant(self, ttl: int) -> int:
        self.leases.append(len(self.leases) + 1)
        return self.leases[-1]

    async def refresh(self, lease: int) -> int:
        return 5

    async def revoke(self, lease: int) -> None:
        self.revoked.append(lease)

    async def put(self, key: str, value: bytes, *, lease: int | None = None) -> None:
        self.puts.append((key, json.loads(value), lease))

    async def reconnect(self) -> None:
        self.reconnects += 1

    async def close(self) -> None:
        self.closed += 1


def start_watch(session: FakeSession, notify: Callable[[str], None], **kwargs: Any) -> tuple[EtcdWatch, list[Any]]:
    stopped: list[Any] = []
    watch = EtcdWatch(
        key="/k",
        label="solo",
        session=session,
        runner=LoopThread("test-etcd-watch"),
        notify=notify,
        status_key="/k.status/solo",
        lease_ttl=3,
        timeout=2.0,
        on_stop=stopped.append,
        **kwargs,
    )
    return watch, stopped


def test_a_dropped_watch_reconnects_and_resumes_after_the_last_revision() -> None:
    """The watch drops after revision 11: the supervisor reconnects, resumes at 12, takes a
    new lease, writes the status again under it and asks for one catch-up reload."""
    session = FakeSession([[KeyEvent(b"a: 2\n", 11)], None])
    triggers: list[str] = []
    watch, stopped = start_watch(session, triggers.append, status={"revision": 5})
    try:
        wait(lambda: len(session.starts) == 2 and len(session.puts) == 2, "the reconnected session")
        assert session.starts == [11, 12]  # after the read's header 10, then after event 11
        assert session.reconnects == 1 and session.gets == 1
        assert [lease for _, _, lease in session.puts] == [1, 2]
        assert session.puts[-1][:2] == ("/k.status/solo", {"revision": 5})
        wait(lambda: len(triggers) >= 2, "the event's reload and the catch-up reload")
        assert set(triggers) == {"etcd"}
        assert watch.pushed is None  # the new session has delivered nothing yet
    finally:
        watch.stop()
    assert session.revoked == [2] and session.closed == 1
    assert stopped == [watch]
    watch.runner.stop()


def test_publish_writes_the_latest_status_under_the_live_lease() -> None:
    """`publish` queues a write; the status lands at `status_key` with the session's lease."""
    session = FakeSession([None])
    watch, _ = start_watch(session, lambda trigger: None)
    try:
        wait(lambda: session.leases == [1], "the lease")
        watch.publish({"revision": 7, "outcome": "applied"})
        wait(lambda: bool(session.puts), "the status write")
        assert session.puts == [("/k.status/solo", {"revision": 7, "outcome": "applied"}, 1)]
    finally:
        watch.stop()
        watch.runner.stop()


def test_an_unreachable_etcd_is_retried_with_backoff_not_in_a_hot_loop() -> None:
    """Every connect fails: attempts are spaced by growing delays (a handful per half second)."""
    session = FakeSession([], fail_connect=True)
    watch, _ = start_watch(session, lambda trigger: None)
    try:
        time.sleep(0.6)
        attempts = session.gets
    finally:
        watch.stop()
        watch.runner.stop()
    assert 2 <= attempts <= 8
    assert session.reconnects >= attempts - 1 and session.leases == []


def test_backoff_doubles_with_jitter_up_to_its_ceiling_and_resets() -> None:
    """Each delay is in [d/2, d] for d = low, 2 low, ... up to high; reset starts over."""
    backoff = Backoff(0.05, 0.4)
    ceilings = [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]
    for ceiling in ceilings:
        assert ceiling / 2 <= backoff.next() <= ceiling
    backoff.reset()
    assert 0.025 <= backoff.next() <= 0.05


def _imports(module: Any) -> dict[str, set[str]]:
    """`{module imported from: names}` of a module's top-level and nested imports."""
    out: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.ImportFrom):
            out.setdefault("." * node.level + (node.module or ""), set()).update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                out.setdefault(alias.name, set())
    return out


def test_the_watch_supervisor_never_reaches_into_the_source() -> None:
    """`_etcd_watch` imports neither the source nor its module, and names none of its attributes."""
    text = inspect.getsource(etcd_watch)
    assert "source." not in text and "source._" not in text
    assert "Etcd(" not in text and "Etcd." not in text
    imported = _imports(etcd_watch)
    assert not any(m.endswith("_etcd") or m.endswith("_file") for m in imported), imported
    assert imported[".._etcd_client"] <= {n for n in dir(etcd_client) if not n.startswith("_")}


def test_fleet_and_the_source_use_only_public_names_of_the_client_and_yaml_modules() -> None:
    """`_fleet` does not import the etcd source; no one imports a `_private` name of the client;
    the source parses through `_yaml`, not a (fake) `YamlFile`."""
    for module in (fleet, etcd_source, etcd_watch):
        imported = _imports(module)
        assert not any(m.endswith("sources._etcd") for m in imported), (module.__name__, imported)
        for name in imported.get("._etcd_client", set()) | imported.get(".._etcd_client", set()):
            assert not name.startswith("_"), (module.__name__, name)
    source_imports = _imports(etcd_source)
    assert "._file" not in source_imports and ".._yaml" in source_imports
    assert not issubclass(sr.Etcd, sr.YamlFile)


def test_the_etcd_modules_stay_small() -> None:
    """Each of the three etcd modules stays under 400 lines."""
    for module in (etcd_client, etcd_watch, etcd_source):
        lines = pathlib.Path(inspect.getfile(module)).read_text().count("\n")
        assert lines < 400, (module.__name__, lines)


@pytest.mark.etcd
def test_the_layer_carries_the_revision_it_was_read_at(etcd: EtcdServer, kv: Kv, key: str) -> None:
    """`load()` returns a layer with its `mod_revision`; a re-read of it is the same layer."""
    rev = kv.put(key, "limit: 2\n")
    source = sr.Etcd(etcd.endpoint, key)
    try:
        layer = source.load()
        assert (layer.name, layer.revision, layer.tree) == (f"etcd:{key}@{rev}", rev, {"limit": 2})
        assert source.load() is layer
        newer = kv.put(key, "limit: 2\n")  # the same bytes again: a new revision, a new layer
        assert source.load().revision == newer
    finally:
        source.close()
    assert not hasattr(source, "_attempt")


def test_file_layers_have_no_revision(tmp_path: pathlib.Path) -> None:
    """`Layer.revision` defaults to None: file layers are unchanged by the new field."""
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\n")
    assert sr.YamlFile(path, watch=False).load().revision is None


def test_threads_are_joined_after_stop() -> None:
    """Stopping a supervised watch leaves no dispatcher thread behind."""
    session = FakeSession([None])
    watch, _ = start_watch(session, lambda trigger: None)
    watch.stop()
    watch.runner.stop()
    assert not any(t.name == "selreload-etcd-notify /k" for t in threading.enumerate())

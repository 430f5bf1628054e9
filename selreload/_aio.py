"""asyncio: async appliers and subscribers run on the application's event loop.

A reload never runs on the loop: parsing and structuring happen on a worker thread
(`areload()`, the watchers' threads), and each async applier call is handed to the loop
with `run_coroutine_threadsafe` and waited for under the same deadline as a sync one. So
the resources an asyncio service reconfigures (an `httpx.AsyncClient`, a pool, a rate
limiter used from coroutines) are changed on their own loop, in registration order with
the sync appliers, inside the one transaction.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from ._change import Change
from ._errors import ApplierTimeoutError, StateError
from ._result import Outcome, ReloadResult
from ._snapshot import Snapshot
from ._transaction import Caller, Together

if TYPE_CHECKING:
    import asyncio

    from ._result import Plan

# asyncio is imported where it is used, not here: `import selreload` must stay cheap for
# services that never touch it.

log = logging.getLogger("selreload.reload")

_STREAM_BUFFER = 1000
"""Results a slow `results()` consumer may fall behind by before the oldest are dropped."""


def is_async(target: Any) -> bool:
    """An `async def` function, or an object whose `apply` is a coroutine function."""
    if inspect.iscoroutinefunction(target):
        return True
    return inspect.iscoroutinefunction(getattr(target, "apply", None))


class AsyncFunctionApplier:
    """Adapts an `async def` function: rolled back by awaiting it with inverted changes."""

    __slots__ = ("fn", "name")

    def __init__(self, fn: Callable[[Sequence[Change], Snapshot[Any]], Awaitable[None]]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__qualname__", None) or repr(fn)

    async def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        await self.fn(changes, snapshot)

    async def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        await self.fn(tuple(c.inverted() for c in changes), snapshot)

    def __repr__(self) -> str:
        return f"<async function applier {self.name}>"


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running in this thread, if any."""
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_KNOWN = 1024
"""Functions whose kind (coroutine function or not) a `LoopCaller` remembers."""


class LoopCaller:
    """Calls an applier's method: a coroutine function on the app's loop, the rest through
    `sync` (a worker thread with a deadline, or inline). Both under `timeout`."""

    __slots__ = ("_async", "loop", "sync", "timeout")

    def __init__(self, sync: Caller, timeout: float | None) -> None:
        self.sync = sync
        self.timeout = timeout
        self.loop: asyncio.AbstractEventLoop | None = None
        # Whether each function is a coroutine function, by the function a bound method
        # wraps (`applier.apply` is a new bound method at every call): asking `inspect`
        # cost ~2 us per applier call. Bounded, for appliers that are made on the fly.
        self._async: dict[Any, bool] = {}

    def _is_async(self, fn: Callable[..., Any]) -> bool:
        key = getattr(fn, "__func__", fn)
        try:
            is_async = self._async.get(key)
        except TypeError:  # an unhashable callable object: ask each time
            return inspect.iscoroutinefunction(fn)
        if is_async is None:
            if len(self._async) >= _KNOWN:
                self._async.clear()
            is_async = self._async[key] = inspect.iscoroutinefunction(fn)
        return is_async

    def batched(self, fns: Sequence[Callable[..., Any]]) -> Together | None:
        """`sync`'s way to make these calls in one handoff (`Deadline.run_all`), when it has
        one and none of them is a coroutine function (those go to the loop one by one)."""
        batched = getattr(self.sync, "batched", None)
        if batched is None or any(self._is_async(fn) for fn in fns):
            return None
        return cast("Together", batched(fns))

    def __call__(self, fn: Callable[..., Any], *args: Any) -> None:
        if not self._is_async(fn):
            self.sync(fn, *args)
            return
        import asyncio

        loop = self.usable_loop()
        # The caller's context goes with the call (call_soon_threadsafe copies it).
        future = asyncio.run_coroutine_threadsafe(fn(*args), loop)
        try:
            future.result(self.timeout)
        except TimeoutError:
            future.cancel()
            raise ApplierTimeoutError(
                f"did not finish within {self.timeout:g} s on the event loop (cancelled; its effect cannot be undone)"
            ) from None
        except concurrent.futures.CancelledError:
            raise ApplierTimeoutError("was cancelled on the event loop before it finished") from None

    def usable_loop(self) -> asyncio.AbstractEventLoop:
        loop = self.loop
        if loop is None or loop.is_closed():
            raise StateError(
                "async appliers and subscribers run on the application's event loop: start the "
                "Reloader with `await reloader.astart()` (or `async with reloader:`) inside it, or "
                "pass Reloader(loop=...)"
            )
        if running_loop() is loop:
            # Waiting here for a coroutine on this very loop would block it forever.
            raise StateError(
                "this reload runs on the event loop's own thread and cannot wait for an async "
                "applier there: use `await reloader.areload()` (or `astart()`, `aon()`) from a coroutine"
            )
        return loop


class Streams:
    """The `results()` streams: each commit is put on every open stream, on its loop.

    A recorder (see `selreload.typing.Recorder`): it only schedules, never waits.
    """

    __slots__ = ("_lock", "_streams")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[ReloadResult]]] = []

    def __repr__(self) -> str:
        return f"<results streams: {len(self._streams)}>"

    def record(self, result: ReloadResult, live: Any) -> None:
        if result.outcome is not Outcome.APPLIED or result.trigger == "start":
            return
        with self._lock:
            streams = list(self._streams)
        for loop, queue in streams:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_put, queue, result)

    def stream(self) -> ResultStream:
        """A stream registered now (commits from this call on are in it)."""
        import asyncio

        stream = ResultStream(asyncio.get_running_loop(), self)
        with self._lock:
            self._streams.append((stream.loop, stream.queue))
        return stream

    def close(self, stream: ResultStream) -> None:
        with self._lock:
            entry = (stream.loop, stream.queue)
            if entry in self._streams:
                self._streams.remove(entry)


class ResultStream:
    """`async for result in reloader.results():` every commit from its creation on; the
    oldest are dropped when the consumer falls `_STREAM_BUFFER` behind. `aclose()` (or
    leaving an `async with`) unregisters it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, owner: Streams) -> None:
        import asyncio

        self.loop = loop
        self.queue: asyncio.Queue[ReloadResult] = asyncio.Queue(maxsize=_STREAM_BUFFER)
        self._owner = owner

    def __aiter__(self) -> ResultStream:
        return self

    async def __anext__(self) -> ReloadResult:
        return await self.queue.get()

    async def aclose(self) -> None:
        self._owner.close(self)

    async def __aenter__(self) -> ResultStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _put(queue: asyncio.Queue[ReloadResult], result: ReloadResult) -> None:
    if queue.full():
        # A consumer that fell this far behind wants the newest state, not every step.
        queue.get_nowait()
    queue.put_nowait(result)


class AsyncSubscriber:
    """An `async def` subscriber: run on the app's loop after each commit, not waited for
    (a reload must not wait on a subscriber); failures are logged by type."""

    __slots__ = ("_caller", "fn")

    def __init__(self, fn: Callable[[ReloadResult], Awaitable[None]], caller: LoopCaller) -> None:
        self.fn = fn
        self._caller = caller

    def __repr__(self) -> str:
        return f"<async subscriber {getattr(self.fn, '__qualname__', self.fn)!r}>"

    def __call__(self, result: ReloadResult) -> None:
        import asyncio

        loop = self._caller.loop
        if loop is None or loop.is_closed():
            log.error("async subscriber %r skipped: the Reloader has no running event loop", self)
            return
        if running_loop() is loop:
            task: Any = loop.create_task(self.fn(result))  # type: ignore[arg-type]
        else:
            task = asyncio.run_coroutine_threadsafe(self.fn(result), loop)  # type: ignore[arg-type]
        task.add_done_callback(self._report)

    def _report(self, done: Any) -> None:
        if done.cancelled():
            return
        exc = done.exception()
        if exc is not None:
            log.error("async subscriber %r failed with %s", self, type(exc).__name__)


class _Responsive:
    """Shortens the GIL switch interval while a reload runs for a coroutine.

    Parsing and structuring run on a worker thread, but they hold the GIL: with the default
    5 ms switch interval the loop's thread waits up to 5 ms for it at every switch
    (measured: a 1 ms ticker's p50 delay 5.3 ms, p99 15 ms during back-to-back reloads of
    1,000 leaves). At 0.2 ms the loop gets the GIL back within about that long. It is a
    process-wide setting, so it is lowered only while such a reload runs (nested or
    concurrent ones share one lowering) and then restored.
    """

    INTERVAL = 0.0002

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = 0.0

    def __enter__(self) -> None:
        import sys

        with self._lock:
            if self._depth == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, self.INTERVAL))
            self._depth += 1

    def __exit__(self, *exc_info: object) -> None:
        import sys

        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                sys.setswitchinterval(self._saved)


responsive = _Responsive()


async def off_the_loop(fn: Callable[[], Any]) -> Any:
    """Run `fn()` on a worker thread (with this context), the loop staying responsive."""
    import asyncio

    def run() -> Any:
        with responsive:
            return fn()

    return await asyncio.to_thread(run)


C = TypeVar("C")
A = TypeVar("A")
R = TypeVar("R", bound="AsyncAPI")


class _Reloading(Protocol[C]):  # type: ignore[misc]  # invariant: Snapshot is
    """What `AsyncAPI` needs of the class it is mixed into (the Reloader)."""

    _call: LoopCaller
    _streams: Streams

    def start(self) -> Snapshot[C]: ...
    def stop(self) -> None: ...
    def reload(self, trigger: str = ..., actor: str | None = ...) -> ReloadResult: ...
    def rollback(self, version: int | str, *, actor: str | None = ...) -> ReloadResult: ...
    def plan(self) -> Plan: ...
    def on(self, path: str, applier: Any, *, name: str | None = ...) -> Any: ...


class AsyncAPI:
    """The Reloader's asyncio API: the same operations, awaited, never on the loop's thread."""

    __slots__ = ()

    async def astart(self: _Reloading[C]) -> Snapshot[C]:
        """`start()` from a coroutine: async appliers and subscribers run on this loop, and
        loading, parsing and structuring happen on a worker thread, not on the loop."""
        import asyncio

        if self._call.loop is None:
            self._call.loop = asyncio.get_running_loop()
        return await off_the_loop(self.start)  # type: ignore[no-any-return]

    async def areload(self: _Reloading[Any], trigger: str = "manual", actor: str | None = None) -> ReloadResult:
        """`reload()` without blocking the event loop (it runs on a worker thread)."""
        return await off_the_loop(lambda: self.reload(trigger, actor))  # type: ignore[no-any-return]

    async def arollback(self: _Reloading[Any], version: int, *, actor: str | None = None) -> ReloadResult:
        """`rollback()` without blocking the event loop."""
        return await off_the_loop(lambda: self.rollback(version, actor=actor))  # type: ignore[no-any-return]

    async def aplan(self: _Reloading[Any]) -> Plan:
        """`plan()` without blocking the event loop (reading and parsing the sources)."""
        return await off_the_loop(self.plan)  # type: ignore[no-any-return]

    async def aon(self: _Reloading[Any], path: str, applier: A, *, name: str | None = None) -> A:
        """`on()` from a coroutine: the initial apply of an applier registered while running
        (which may need this very loop) happens without blocking it."""
        return await off_the_loop(lambda: self.on(path, applier, name=name))  # type: ignore[no-any-return]

    def results(self: _Reloading[Any]) -> ResultStream:
        """Every committed reload from this call on, as an async stream (a consumer that
        falls 1,000 behind loses the oldest): `async for result in reloader.results(): ...`.
        Call it from a coroutine; `aclose()` it (or use `async with`) when done."""
        return self._streams.stream()

    async def __aenter__(self: R) -> R:
        await AsyncAPI.astart(cast(Any, self))  # the class it is mixed into is a _Reloading
        return self

    async def __aexit__(self: _Reloading[Any], *exc_info: object) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)

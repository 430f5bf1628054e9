"""An asyncio event loop on its own thread, for aetcd calls from synchronous code."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An asyncio event loop running on its own daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._batch_lock = threading.Lock()
        self._batch: list[Callable[[], object]] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coro` on the loop and wait for it, at most `timeout` seconds."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer from etcd within {timeout:g}s") from None
        except concurrent.futures.CancelledError:
            # gRPC cancels the calls in flight on a channel that is closed under them.
            raise ConnectionError("etcd request cancelled: the connection was closed") from None

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def call_soon_batched(self, fn: Callable[[], object]) -> None:
        """`call_soon(fn)`, sharing one wake-up of the loop with the calls made before the
        loop got to them: each wake-up is a write to the loop's self-pipe and a thread
        switch, and a process hosting many instances publishes many statuses in a row."""
        with self._batch_lock:
            self._batch.append(fn)
            if len(self._batch) > 1:
                return
        try:
            self.loop.call_soon_threadsafe(self._run_batch)
        except RuntimeError:  # the loop is closed: nothing will run them
            with self._batch_lock:
                self._batch.clear()
            raise

    def _run_batch(self) -> None:
        with self._batch_lock:
            batch, self._batch = self._batch, []
        for fn in batch:
            fn()

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)


def run_sync(coro_fn: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
    """Run one coroutine on a private loop thread (safe even when the caller runs a loop)."""
    runner = LoopThread("selreload-etcd-call")
    try:
        return runner.call(coro_fn(), timeout)
    finally:
        runner.stop()


async def uninterrupted(make: Awaitable[T], undo: Callable[[T], Awaitable[object]]) -> T:
    """Await `make` to its end even when the caller is cancelled; if it then succeeds,
    `undo(result)` runs on the loop.

    For aetcd's watch creation: cancelled halfway, it leaves its request in flight, and
    the `created` answer is then given to the next watch created on that stream (another
    instance's, on a shared client), which from then on hears the wrong key.
    """
    task = asyncio.ensure_future(make)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:

        async def undone(result: T) -> None:
            try:
                await undo(result)
            except Exception:  # noqa: BLE001 - best effort: the stream may be gone too
                pass
            finally:
                _undoing.discard(asyncio.current_task())  # type: ignore[arg-type]

        def done(finished: asyncio.Future[T]) -> None:
            if not finished.cancelled() and finished.exception() is None:
                _undoing.add(asyncio.ensure_future(undone(finished.result())))

        task.add_done_callback(done)
        raise


_undoing: set[asyncio.Future[None]] = set()  # held until done: the loop keeps weak references

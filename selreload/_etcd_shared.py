"""One etcd connection and loop thread per process and cluster, shared by every `sr.Etcd` on it.

A process that hosts many instances (several Reloaders, or a test simulating a fleet) would
otherwise open one gRPC connection, one watch stream and one event-loop thread per source.
Sources that reach the same cluster the same way (endpoints, TLS material, credentials,
request timeout: the whole `Access`) share one `SharedClient` instead: one loop thread, one
aetcd client, so one HTTP/2 connection on which etcd multiplexes all their watches, and
one small pool of threads for their reloads (`_etcd_dispatch`). Each
source keeps its own `Session` (its own revision cursor), its own watches, lease and status
key: sharing the transport changes nothing a source reports.

The registry counts users: `acquire()` opens or joins, `release()` leaves, and the last
user out closes the client and stops the loop thread. After `fork()` the child has none
of the parent's threads: the registry forgets the parent's clients (without closing them:
the parent still uses them) and a child's first `acquire()` opens its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ._etcd_access import Access
from ._etcd_client import Channel, LoopThread, Session, T, client_errors, first_line
from ._etcd_dispatch import Dispatcher
from ._etcd_loop import run_sync

log = logging.getLogger("selreload.etcd")

__all__ = ["SharedClient", "acquire", "release", "shared_clients"]


class SharedClient:
    """A loop thread and the `Channel` every user's session goes through.

    Attributes:
        runner: the loop thread the channel (and each user's session) runs on.
        channel: the one aetcd client, replaced on failure.
        dispatcher: the pool that runs the watches' reloads and health checks.
        users: how many sources hold it now.
        pid: the process it belongs to (a forked child must not use it).
    """

    def __init__(self, access: Access, timeout: float) -> None:
        self.key = (access, timeout)
        self.runner = LoopThread(f"selreload-etcd {access}")
        self.channel = Channel(access, timeout=timeout, name=str(access))
        self.dispatcher = Dispatcher(f"selreload-etcd-notify {access}")
        self.users = 0
        self.pid = os.getpid()

    def __repr__(self) -> str:
        return f"<SharedClient {self.key[0]} users={self.users}>"

    @property
    def usable(self) -> bool:
        """This process's, and not closed by its last user."""
        return self.pid == os.getpid() and not self.runner.loop.is_closed()


_lock = threading.Lock()
_clients: dict[tuple[Access, float], SharedClient] = {}


def acquire(access: Access, timeout: float) -> SharedClient:
    """Join the process's client for `access` (opened now if there is none); call
    `release()` once when done with it."""
    with _lock:
        key = (access, timeout)
        shared = _clients.get(key)
        if shared is None or not shared.usable:
            shared = _clients[key] = SharedClient(access, timeout)
        shared.users += 1
        return shared


def release(shared: SharedClient) -> None:
    """Leave `shared`; the last user closes its client and stops its loop thread."""
    with _lock:
        if shared.pid != os.getpid():
            return  # the parent's, inherited through fork(): the parent closes it
        shared.users -= 1
        if shared.users > 0:
            return
        if _clients.get(shared.key) is shared:
            del _clients[shared.key]
    # Outside the lock: closing waits on the loop, and a new user must not wait for that
    # (it gets a fresh client; this one is already out of the registry).
    shared.dispatcher.close(shared.channel.timeout + 2.0)
    runner = shared.runner
    if runner.loop.is_closed():
        return
    try:
        runner.call(shared.channel.close(), shared.channel.timeout + 1.0)
    except Exception:  # etcd may be gone; the channel is closed with the loop either way
        log.debug("etcd %s: closing the shared client", shared.channel.name, exc_info=True)
    runner.stop()


def shared_clients() -> list[SharedClient]:
    """The clients open in this process now (for tests and diagnostics)."""
    with _lock:
        return [c for c in _clients.values() if c.pid == os.getpid()]


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # the parent may have held it at fork()
    _clients.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def one_shot(
    where: Access, key: str, fn: Callable[[Session], Coroutine[Any, Any, T]], *, timeout: float, budget: float
) -> T:
    """`fn(session)` on a session and a loop thread of its own, both closed after it: the
    CLI's short calls (a rollout's steps, fleet overrides). An unreachable etcd is one
    `ConnectionError` line.
    """
    session = Session(where, timeout=timeout, name=key)

    async def go() -> T:
        try:
            return await fn(session)
        finally:
            await session.close()

    try:
        return run_sync(go, budget)
    except client_errors() as exc:
        raise ConnectionError(f"cannot reach etcd at {where}: {first_line(exc)}") from None

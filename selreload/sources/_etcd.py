"""The etcd source: one key holds a YAML document; each instance ACKs or NACKs every revision.

aetcd is asyncio-only, so each `Etcd` runs its `Session` in an event loop on its own thread
(`LoopThread`): `load()` blocks on a future from that loop, and synchronous apps need
nothing from asyncio. `watch()` hands the same session and loop to an `EtcdWatch`, which
keeps the watch and this instance's status lease up (`_etcd_watch`).
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import ConfigError, Issue
from .._etcd_client import LoopThread, Session, client_errors, parse_endpoints, require_client, show_endpoints
from .._guard import MAX_BYTES, MAX_NODES
from .._result import Outcome
from .._typing import Layer, NotifyFn, Watcher
from .._yaml import parse_document
from ._etcd_watch import EtcdWatch

if TYPE_CHECKING:
    from .._result import ReloadResult
    from .._snapshot import Snapshot

log = logging.getLogger("selreload.etcd")

# Outcomes that accept a revision (ACK): the live config is what that revision holds,
# less any restart-only change, which the status lists as rejected.
_ACK = (Outcome.APPLIED, Outcome.UNCHANGED, Outcome.REJECTED)


class Etcd:
    """A YAML document held at one etcd key, watched, with an ACK/NACK status per instance.

    After every reload attempt the instance writes its status as JSON to
    `{status_prefix}/{instance}` under a lease it keeps alive (`instance`, `version`,
    `revision` the attempt was about, `applied_revision` live now, `outcome`, `rejected`
    paths, `errors`, `ts`); an instance that dies disappears when its lease expires.

    Args:
        endpoints: `"http://127.0.0.1:2379"`, comma-separated or a list for a cluster.
        key: the key holding the document, e.g. `/app/config`.
        instance: this instance's name in the fleet (default `hostname-pid`).
        status_prefix: where statuses go (default `{key}.status`).
        lease_ttl: seconds a dead instance's status outlives it.
        timeout: seconds for one etcd request.
        max_bytes: a larger value is refused without being parsed (default 4 MiB, as files).
        max_nodes: a document holding more values is refused (default 100,000, as files).

    Origins read `etcd:KEY@REVISION:line:col`, and each layer carries its `revision`. A
    deleted key, or etcd going away, keeps the live config (with a warning); the watch
    reconnects with backoff and catches up.
    """

    def __init__(
        self,
        endpoints: str | Sequence[str],
        key: str,
        *,
        instance: str | None = None,
        status_prefix: str | None = None,
        lease_ttl: int = 10,
        timeout: float = 5.0,
        max_bytes: int = MAX_BYTES,
        max_nodes: int = MAX_NODES,
    ) -> None:
        if not key:
            raise ValueError("an etcd key is required")
        if lease_ttl < 1:
            raise ValueError(f"lease_ttl must be at least 1 second, got {lease_ttl!r}")
        self.endpoints = parse_endpoints(endpoints)
        require_client()  # without the `etcd` extra: fail here, in one line naming it
        self.key = key
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}"
        self.status_prefix = (status_prefix or f"{key}.status").rstrip("/")
        self.status_key = f"{self.status_prefix}/{self.instance}"
        self.lease_ttl = int(lease_ttl)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_nodes = max_nodes
        self._runner_lock = threading.Lock()
        self._runner: LoopThread | None = None
        # Touched only by coroutines on the runner's loop (reads here, the watch there).
        self._session = Session(self.endpoints, timeout=timeout, name=key)
        # What this source knows of the key; touched by load() and report(), which the
        # Reloader serializes.
        self._good: Layer | None = None  # the last document that parsed; load() falls back to it
        self._newest = 0  # mod_revision of the newest document read, parsed or not
        self._consumed = 0  # the newest store revision load() has read, by request or from the watch
        self._applied = 0  # the revision the live config came from, as last reported
        self._status: dict[str, Any] | None = None
        self._watch: EtcdWatch | None = None

    @property
    def name(self) -> str:
        return f"etcd:{self.key}"

    def __repr__(self) -> str:
        return f"Etcd({show_endpoints(self.endpoints)!r}, {self.key!r}, instance={self.instance!r})"

    def _loop(self) -> LoopThread:
        with self._runner_lock:
            if self._runner is None:
                self._runner = LoopThread(f"selreload-etcd {self.key}")
            return self._runner

    # --- Source ---------------------------------------------------------------------------

    def load(self) -> Layer:
        """Read the document now; the layer carries the revision it was read at.

        Raises:
            ConfigError: the document does not parse; or, before any document was read,
                the key is missing or etcd cannot be reached.
        """
        watch = self._watch
        pushed = watch.pushed if watch is not None else None
        try:
            if pushed is not None and pushed.revision > self._consumed:
                # The watch delivered a newer value than the last read: use it, saving a
                # round trip per instance per put (a later put is a later event anyway).
                value, revision = pushed
                self._consumed = revision
            else:
                value, revision, header = self._loop().call(self._session.get(self.key), self.timeout + 1.0)
                self._consumed = max(self._consumed, header)
        except client_errors() as exc:
            if self._good is not None:
                log.warning(
                    "etcd %s at %s unreachable (%s): keeping the config from revision %s",
                    self.key,
                    show_endpoints(self.endpoints),
                    exc,
                    self._good.revision,
                )
                return self._good
            msg = f"cannot read from etcd at {show_endpoints(self.endpoints)}: {exc}"
            raise ConfigError([Issue("", msg, self.name)]) from None
        if value is None:
            if self._good is not None:
                log.warning(
                    "etcd key %s was deleted: keeping the config from revision %s", self.key, self._good.revision
                )
                return self._good
            raise ConfigError([Issue("", f"etcd key does not exist (at {show_endpoints(self.endpoints)})", self.name)])
        self._newest = revision
        # The revision is part of the identity: every revision gets its own ACK or NACK,
        # even one that writes the same bytes again.
        digest = f"{hashlib.sha256(value).hexdigest()}@{revision}"
        if self._good is not None and self._good.digest == digest:
            return self._good
        name = f"{self.name}@{revision}"
        if len(value) > self.max_bytes:
            msg = f"value too large: {len(value):,} bytes, over the limit of {self.max_bytes:,} (max_bytes)"
            raise ConfigError([Issue("", msg, name)])
        layer = attrs.evolve(parse_document(name, value, digest, max_nodes=self.max_nodes), revision=revision)
        self._good = layer
        return layer

    def watch(self, notify: NotifyFn) -> Watcher | None:
        """Watch the key from the last revision read (or from now, before any read) and
        keep this instance's status alive until `stop()`."""
        if self._watch is not None:
            self._watch.stop()
        self._watch = EtcdWatch(
            key=self.key,
            label=self.instance,
            session=self._session,
            runner=self._loop(),
            notify=notify,
            status_key=self.status_key,
            lease_ttl=self.lease_ttl,
            timeout=self.timeout,
            status=self._status,
            on_stop=self._watch_stopped,
        )
        return self._watch

    def _watch_stopped(self, watch: EtcdWatch) -> None:
        # The loop thread goes with the watch (a later load() starts a new one): stopping
        # a Reloader stops its watchers, and nothing else would end the thread.
        with self._runner_lock:
            if self._runner is watch.runner:
                self._runner = None
        if self._watch is watch:
            self._watch = None
        watch.runner.stop()

    # --- Reporter -------------------------------------------------------------------------

    def report(self, result: ReloadResult, snapshot: Snapshot[Any]) -> None:
        """Record the ACK (applied, unchanged, rejected) or NACK of the newest revision read.

        The attempt was about the newest document read: a fallback (etcd unreachable, the
        key deleted) reads nothing newer. An ACK makes the layer `load()` returned live,
        which is always the last document that parsed.
        """
        previous = self._status
        revision = self._newest
        if result.outcome is Outcome.UNCHANGED and previous is not None and previous["revision"] == revision:
            return  # the same revision again (a coalesced event): the last status still holds
        acked = result.outcome in _ACK
        if acked and self._good is not None and self._good.revision is not None:
            self._applied = self._good.revision
        # A NACK leaves the live config, and so its pending restart, as it was.
        rejected = [c.path for c in result.rejected] if acked or previous is None else previous["rejected"]
        self._status = status = {
            "instance": self.instance,
            "reloader": result.instance,
            "version": result.version,
            "digest": snapshot.digest,
            "revision": revision,
            "applied_revision": self._applied,
            "outcome": result.outcome.value,
            "rejected": rejected,
            "errors": [str(e) for e in result.errors],
            "ts": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
        }
        watch = self._watch
        if watch is not None:
            watch.publish(status)

    def close(self) -> None:
        """Stop the watch, if any, and the loop thread (a later `load()` starts a new one)."""
        if self._watch is not None:
            self._watch.stop()
        with self._runner_lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.call(self._session.close(), self.timeout)
            runner.stop()

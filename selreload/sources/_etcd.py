"""The etcd source: one key holds a YAML document; each instance ACKs or NACKs every revision.

aetcd is asyncio-only: each `Etcd` runs its `Session` on the process's loop thread and
client for its cluster (`_etcd_shared`), so `load()` blocks on a future and synchronous
apps need nothing from asyncio. `watch()` hands both to an `EtcdWatch` (`_etcd_watch`).
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .. import _args
from .._errors import ConfigError, Issue
from .._etcd_access import Access, access
from .._etcd_client import LoopThread, Session, client_errors, first_line, require
from .._etcd_shared import SharedClient, acquire, release
from .._fleet_overrides import control_key, overrides_key
from .._guard import MAX_BYTES, MAX_NODES
from .._result import Outcome
from .._rollout_record import canary_value, candidate_key, rollout_key
from .._typing import Layer, NotifyFn, Watcher
from .._yaml import parse_document
from ._etcd_fleet import InstanceFleet
from ._etcd_watch import EtcdWatch

if TYPE_CHECKING:
    import weakref

    from .._reloader import Reloader
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
        ca_cert: a CA bundle (PEM) to verify etcd with (default `$ETCDCTL_CACERT`, else
            the system roots for `https://`).
        client_cert, client_key: a client certificate and key (PEM) for `--client-cert-auth`
            (default `$ETCDCTL_CERT`, `$ETCDCTL_KEY`).
        server_name: the name etcd's certificate carries, when not the endpoint's host.
        user: an etcd user, `name` or `name:password` (default `$ETCDCTL_USER`).
        password: its password (default `$ETCDCTL_PASSWORD`); never logged or shown.
        rollouts: take part in progressive rollouts (`selreload push --canary`): also
            watch `{key}.rollout` and `{key}.candidate`, and load the candidate while the
            rollout record names this instance a canary.
        health: an extra check, `() -> bool` or `(ok, reason)`, reported as `healthy` in
            every status (with the Reloader's own `status()["healthy"]`); a canary that
            turns unhealthy while it bakes fails the rollout.
        health_interval: seconds between health re-checks while nothing changes.
        overrides: take part in fleet overrides and commands (`selreload set|unset|rollback
            --etcd`): watch `{key}.overrides` and `{key}.control`, put the overrides in
            force on top of the document, run each command once (see `_etcd_fleet`).

    Raises:
        ValueError: a bad endpoint, an unreadable TLS file, a user without a password.
        ImportError: the `etcd` extra (aetcd) is not installed.

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
        ca_cert: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        server_name: str | None = None,
        user: str | None = None,
        password: str | None = None,
        rollouts: bool = True,
        health: Callable[[], bool | tuple[bool, str]] | None = None,
        health_interval: float = 1.0,
        overrides: bool = True,
    ) -> None:
        _args.every("Etcd", _args.text, key="" if key is None else key, instance=instance, status_prefix=status_prefix)
        _args.every("Etcd", _args.positive_count, lease_ttl=lease_ttl, max_bytes=max_bytes, max_nodes=max_nodes)
        _args.every("Etcd", _args.positive_seconds, timeout=timeout, health_interval=health_interval)
        _args.every("Etcd", _args.flag, rollouts=rollouts, overrides=overrides)
        _args.every("Etcd", lambda w, n, v: _args.callable_with(w, n, v, ()), health=health)
        require()
        self.access: Access = access(
            endpoints,
            ca_cert=ca_cert,
            client_cert=client_cert,
            client_key=client_key,
            server_name=server_name,
            user=user,
            password=password,
        )
        self.endpoints = self.access.hosts
        self.key = key
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}"
        self.status_prefix = (status_prefix or f"{key}.status").rstrip("/")
        self.status_key = f"{self.status_prefix}/{self.instance}"
        self.lease_ttl = int(lease_ttl)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_nodes = max_nodes
        self._runner_lock = threading.Lock()
        # The process's client for this cluster, shared with every other source on it;
        # held from the first load() or watch() to the watch's stop() or close().
        self._shared: SharedClient | None = None
        # Touched only by coroutines on the shared loop (reads here, the watch there).
        self._session = Session(self.access, timeout=timeout, name=key)
        # What this source knows of the key; touched by load() and report(), which the
        # Reloader serializes.
        self._good: Layer | None = None  # the last document that parsed; load() falls back to it
        self._newest = 0  # mod_revision of the newest document read, parsed or not
        self._consumed = 0  # the newest store revision load() has read, by request or from the watch
        self._applied = 0  # the revision the live config came from, as last reported
        self._status: dict[str, Any] | None = None
        self._watch: EtcdWatch | None = None
        self.rollouts = rollouts
        self.health = health
        self.health_interval = health_interval
        self._reloader_healthy: Callable[[], bool] | None = None
        self._canary = False  # the last read loaded the rollout's candidate
        self.overrides = overrides
        self._fleet = InstanceFleet(key)

    @property
    def name(self) -> str:
        return f"etcd:{self.key}"

    def __repr__(self) -> str:
        return f"Etcd({str(self.access)!r}, {self.key!r}, instance={self.instance!r})"

    def _loop(self) -> LoopThread:
        with self._runner_lock:
            shared = self._shared
            if shared is None or not shared.usable:
                # None yet, or the parent's after fork(): join (or open) this process's.
                self._shared = shared = acquire(self.access, self.timeout)
                self._session.bind(shared.channel)
            return shared.runner

    def _release(self) -> None:
        with self._runner_lock:
            shared, self._shared = self._shared, None
        if shared is not None:
            release(shared)

    # --- Source ---------------------------------------------------------------------------

    def load(self) -> Layer:
        """Read the document now; the layer carries the revision it was read at.

        Raises:
            ConfigError: the document does not parse; or, before any document was read,
                the key is missing or etcd cannot be reached.
        """
        watch = self._watch
        pushed = watch.pushed if watch is not None else None
        side = watch.side_revision if watch is not None else 0
        try:
            if pushed is not None and pushed.revision > self._consumed and side <= self._consumed and not self._canary:
                # The watch delivered a newer value than the last read: use it, saving a
                # round trip per instance per put (a later put is a later event anyway).
                value, revision = pushed
                self._consumed = revision
            elif self.rollouts or self.overrides:
                value, revision = self._read_with_rollout()
            else:
                value, revision, header = self._loop().call(self._session.get(self.key), self.timeout + 1.0)
                self._consumed = max(self._consumed, header)
        except client_errors() as exc:
            if self._good is not None:
                log.warning(
                    "etcd %s at %s unreachable (%s): keeping the config from revision %s",
                    self.key,
                    self.access,
                    first_line(exc),
                    self._good.revision,
                )
                return self._compose(self._good)
            msg = f"cannot read from etcd at {self.access}: {first_line(exc)}"
            raise ConfigError([Issue("", msg, self.name)]) from None
        if value is None:
            if self._good is not None:
                log.warning(
                    "etcd key %s was deleted: keeping the config from revision %s", self.key, self._good.revision
                )
                return self._compose(self._good)
            raise ConfigError([Issue("", f"etcd key does not exist (at {self.access})", self.name)])
        self._newest = revision
        # The revision is part of the identity: every revision gets its own ACK or NACK,
        # even one that writes the same bytes again.
        digest = f"{hashlib.sha256(value).hexdigest()}@{revision}"
        if self._good is not None and self._good.digest == digest:
            return self._compose(self._good)
        name = f"etcd:{candidate_key(self.key)}@{revision}" if self._canary else f"{self.name}@{revision}"
        if len(value) > self.max_bytes:
            msg = f"value too large: {len(value):,} bytes, over the limit of {self.max_bytes:,} (max_bytes)"
            raise ConfigError([Issue("", msg, name)])
        layer = parse_document(name, value, digest, max_nodes=self.max_nodes, revision=revision)
        self._good = layer
        return self._compose(layer)

    def _compose(self, doc: Layer) -> Layer:
        """The document with the fleet overrides in force now on top (the overrides of
        the last read: an expiry applies even while etcd is unreachable)."""
        return self._fleet.compose(doc) if self.overrides else doc

    def _read_with_rollout(self) -> tuple[bytes | None, int]:
        """The key, or the candidate while the rollout record names this instance a canary,
        and the fleet overrides and command: all read in one transaction, so a record never
        meets a stale candidate."""
        key = self.key
        keys = (key, rollout_key(key), candidate_key(key), overrides_key(key), control_key(key))
        found, header = self._loop().call(self._session.read(keys), self.timeout + 1.0)
        self._consumed = max(self._consumed, header)
        if self.overrides:
            self._fleet.read(found.get(keys[3]), found.get(keys[4]))
        record, candidate = found.get(keys[1]), found.get(keys[2])
        self._canary = self.rollouts and canary_value(record and record[0], candidate and candidate[0], self.instance)
        if self._canary and candidate is not None:
            return candidate
        got = found.get(self.key)
        return (got[0], got[1]) if got is not None else (None, 0)

    def bind_health(self, healthy: Callable[[], bool]) -> None:
        """Called by the Reloader: `healthy()` is its `status()["healthy"]`, reported in
        every status alongside the user's `health` check."""
        self._reloader_healthy = healthy

    def bind_reloader(self, reloader: weakref.ReferenceType[Reloader[Any]]) -> None:
        """Called by the Reloader: fleet commands run on it, and its schema decides which
        fleet overrides this instance refuses."""
        self._fleet.bind(reloader)

    def _peek_overrides(self) -> tuple[bytes, int] | bool | None:
        """The overrides record, read now if a side key changed since the last read
        (False: nothing new, or etcd unreachable: the reload finds out)."""
        watch = self._watch
        if not self.overrides or watch is None or watch.side_revision <= self._consumed:
            return False
        key = overrides_key(self.key)
        try:
            found, _ = self._loop().call(self._session.read((key,)), self.timeout + 1.0)
        except client_errors():
            return False
        return found.get(key)

    def _publish_command(self, command: dict[str, Any]) -> None:
        if (status := self._status) is not None and (watch := self._watch) is not None:
            self._status = status = {**status, **command}
            watch.publish(status)

    def _health(self) -> tuple[bool, str | None]:
        try:
            if self._reloader_healthy is not None and not self._reloader_healthy():
                return False, "the reloader reports unhealthy (see its status())"
            if self.health is None:
                return True, None
            answer = self.health()
        except Exception as exc:  # noqa: BLE001 - a failing check is an unhealthy answer
            return False, f"health check raised {type(exc).__name__}: {exc}"
        ok, why = answer if isinstance(answer, tuple) else (answer, None)
        return bool(ok), (None if ok else (why or "health check failed"))

    def _recheck(self) -> None:
        # From the watch's dispatcher, between reloads: a canary that turns unhealthy while
        # it bakes must say so without waiting for the next revision.
        status = self._status
        if status is None:
            return
        healthy, why = self._health()
        if healthy != status.get("healthy") or why != status.get("health"):
            self._status = status = {**status, "healthy": healthy, "health": why}
            watch = self._watch
            if watch is not None:
                watch.publish(status)

    def watch(self, notify: NotifyFn) -> Watcher | None:
        """Watch the key from the last revision read (or from now, before any read) and
        keep this instance's status alive until `stop()`."""
        if self._watch is not None:
            self._watch.stop()
        runner = self._loop()
        also: tuple[str, ...] = (rollout_key(self.key), candidate_key(self.key)) if self.rollouts else ()
        if self.overrides:
            also += (overrides_key(self.key), control_key(self.key))
            self._fleet.watching(notify)
        self._watch = EtcdWatch(
            key=self.key,
            label=self.instance,
            session=self._session,
            runner=runner,
            notify=self._fleet.on_change(notify, peek=self._peek_overrides, publish=self._publish_command),
            status_key=self.status_key,
            lease_ttl=self.lease_ttl,
            timeout=self.timeout,
            status=self._status,
            on_stop=self._watch_stopped,
            also=also,
            tick=self._recheck,
            tick_interval=self.health_interval,
            dispatcher=self._shared.dispatcher if self._shared is not None else None,
        )
        return self._watch

    def _watch_stopped(self, watch: EtcdWatch) -> None:
        # The shared client is released with the watch (a later load() joins again):
        # stopping a Reloader stops its watchers, and the last one out closes the client.
        if self._watch is watch:
            self._watch = None
            self._fleet.close()  # a stopped instance drops no override: it serves none
        self._release()

    # --- Reporter -------------------------------------------------------------------------

    def report(self, result: ReloadResult, snapshot: Snapshot[Any]) -> None:
        """Record the ACK (applied, unchanged, rejected) or NACK of the newest revision read.

        The attempt was about the newest document read: a fallback (etcd unreachable, the
        key deleted) reads nothing newer. An ACK makes the layer `load()` returned live,
        which is always the last document that parsed.
        """
        previous = self._status
        revision = self._newest
        healthy, why = self._health()
        fleet = self._fleet.status() if self.overrides else {}
        if (
            result.outcome is Outcome.UNCHANGED
            and previous is not None
            and previous["revision"] == revision
            and all(previous.get(k) == v for k, v in fleet.items())
        ):
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
            "candidate": self._canary,
            "healthy": healthy,
            "health": why,
            "ts": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
        }
        status.update(fleet)
        watch = self._watch
        if watch is not None:
            watch.publish(status)

    def close(self) -> None:
        """Stop the watch, if any, and leave the shared client (its last user closes it; a
        later `load()` joins again)."""
        if self._watch is not None:
            self._watch.stop()
        self._fleet.close()
        self._release()

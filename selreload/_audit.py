"""A tamper-evident audit log: JSON Lines, one fsynced record per attempt, hash-chained.

The format (canonical JSON, the hash chain, torn lines) is described in `_audit_chain`;
reading and verifying a file is `_audit_read`. Both are re-exported here.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import threading
import time
import weakref
from typing import Any

import attrs

from . import _args
from ._audit_chain import (
    GENESIS,
    HMAC_SHA256,
    O_CLOEXEC,
    canonical,
    encoded,
    last_hash,
    load_key,
    lock_file,
    mac,
    record_hash,
    unlock_file,
)
from ._audit_read import AuditLine, AuditProblem, AuditVerification, audit_head, read_audit, scan_audit, verify_audit
from ._errors import AuditWriteError
from ._identity import default_instance
from ._present import change_to_json
from ._result import ReloadResult

__all__ = [
    "GENESIS",
    "HMAC_SHA256",
    "AuditLine",
    "AuditLog",
    "AuditProblem",
    "AuditVerification",
    "audit_head",
    "canonical",
    "load_key",
    "read_audit",
    "record_hash",
    "scan_audit",
    "verify_audit",
]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


class _Chain:
    """The writer state of one file, shared by every AuditLog on that path in this process:
    one lock, one descriptor, and the hash the next record chains to."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.fd: int | None = None
        self.ident: tuple[int, int] | None = None
        self.head = GENESIS
        self.end = -1  # file size after our last write; anything else means someone else wrote

    def forget(self) -> None:
        """In a forked child: drop the parent's descriptor and chain. The inherited
        descriptor shares the parent's open file description, so `flock` would not keep
        the two apart; the child opens its own and re-reads the tail before appending."""
        self.lock = threading.Lock()  # another thread of the parent may have held it
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)  # the parent's lock is not released: it still holds the description
        self.fd, self.ident, self.head, self.end = None, None, GENESIS, -1

    def _open(self) -> int:
        if self.fd is not None:
            try:
                st = os.stat(self.path)
                if (st.st_dev, st.st_ino) == self.ident:
                    return self.fd
            except FileNotFoundError:
                pass
            # Rotated or removed: write to whatever is at the path now.
            os.close(self.fd)
            self.fd = None
        created = not os.path.exists(self.path)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | O_CLOEXEC, 0o600)
        if created:
            _fsync_dir(self.path)
        st = os.fstat(fd)
        self.fd, self.ident, self.end = fd, (st.st_dev, st.st_ino), -1
        return fd

    def append(self, record: dict[str, Any], *, fsync: bool, key: bytes | None) -> dict[str, Any]:
        with self.lock:
            try:
                fd = self._open()
                lock_file(fd)
            except OSError as exc:
                raise _write_error(self.path, exc, record) from exc
            try:
                return self._append_locked(fd, record, fsync=fsync, key=key)
            finally:
                unlock_file(fd)

    def _append_locked(self, fd: int, record: dict[str, Any], *, fsync: bool, key: bytes | None) -> dict[str, Any]:
        try:
            size = os.fstat(fd).st_size
            newline_missing = False
            if size != self.end:
                # First write, a failed one, or another process (a forked child, a second
                # worker) appended or truncated: chain to what is on disk, under the lock.
                self.head, ends = last_hash(fd, size)
                newline_missing = not ends
        except OSError as exc:
            self.end = -1
            raise _write_error(self.path, exc, record) from exc
        if key is not None:
            record["alg"] = HMAC_SHA256
        record["prev_hash"] = self.head
        body = encoded(record)
        digest = mac(body, key)
        line = body[:-1] + b',"hash":"' + digest.encode() + b'"}\n'
        # A torn tail (a crash mid-write) gets its newline first: the record never glues on.
        data = (b"\n" if newline_missing else b"") + line
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        except OSError as exc:
            self._undo(fd, size)
            raise _write_error(self.path, exc, record) from exc
        record["hash"] = self.head = digest
        self.end = size + len(data)
        return record

    def _undo(self, fd: int, size: int) -> None:
        # Still under the exclusive lock: cut what this write left (a fragment, or a whole
        # record whose fsync failed) so the file holds no record the caller was told failed.
        # Truncating needs no free space; if it fails anyway, the next append re-reads the
        # tail (end = -1) and terminates or chains to whatever stayed.
        try:
            if os.fstat(fd).st_size > size:
                os.ftruncate(fd, size)
        except OSError:
            pass
        self.end = -1


def _write_error(path: str, exc: OSError, record: dict[str, Any]) -> AuditWriteError:
    return AuditWriteError(exc.errno, exc.strerror or str(exc), path, record)


def _fsync_dir(path: str) -> None:
    # A new file's directory entry must reach the disk too, or a crash can lose the file.
    try:
        dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


_CHAINS: dict[str, _Chain] = {}
_CHAINS_LOCK = threading.Lock()
_LOGS: weakref.WeakSet[AuditLog] = weakref.WeakSet()


def _chain(path: str) -> _Chain:
    key = os.path.realpath(path)
    with _CHAINS_LOCK:
        chain = _CHAINS.get(key)
        if chain is None:
            chain = _CHAINS[key] = _Chain(key)
        return chain


def _after_fork_in_child() -> None:
    # gunicorn --preload, multiprocessing with fork: the child must not share the parent's
    # descriptor (flock would not exclude them) nor its chain head or pending denials.
    global _CHAINS_LOCK
    _CHAINS_LOCK = threading.Lock()
    for chain in _CHAINS.values():
        chain.forget()
    for log in list(_LOGS):
        log._forget_denials()


def _flush_all() -> None:
    for log in list(_LOGS):
        with contextlib.suppress(AuditWriteError):  # at exit nobody is left to tell
            log.flush()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_flush_all)


@attrs.define
class _Denial:
    """The denials of one (config, actor, reason) since its last record."""

    written: float  # time.monotonic() of that record
    pending: int = 0
    action: str = ""
    version: int | None = None
    digest: str | None = None
    instance: str | None = None


class AuditLog:
    """Appends one hash-chained JSON record per reload attempt (UNCHANGED ones excepted).

    Every AuditLog on the same file in one process shares one lock and one chain, so two
    Reloaders can write to one file; writers in other processes (forked children
    included) are serialised by `flock` and each re-reads the tail before appending.

    Args:
        path: the JSON Lines file; created (mode 0600) when missing, continued when present.
        fsync: `os.fsync` after every record (default). Off only where losing the last
            records in a power cut is acceptable.
        key: an HMAC key (bytes or text): records are chained with HMAC-SHA256, so a
            rewrite of the whole file is detectable by whoever holds the key.
        key_file: read the key from this file instead (whitespace around it stripped).
        denial_window: seconds: `record_denied` writes at most one record per window per
            (config, actor, reason), with the `count` of denials it stands for (0: every
            denial gets its own record).

    Raises:
        ValueError: both `key` and `key_file`, or an empty key.
        OSError: `key_file` cannot be read.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = True,
        key: bytes | str | None = None,
        key_file: str | os.PathLike[str] | None = None,
        denial_window: float = 1.0,
    ) -> None:
        self.path = _args.path("AuditLog", "path", path)
        self.fsync = _args.flag("AuditLog", "fsync", fsync)
        self.denial_window = _args.seconds("AuditLog", "denial_window", denial_window)
        if key is not None and not isinstance(key, bytes | str):
            raise TypeError(f"AuditLog: key must be bytes or a str, got {_args.got(key, secret=True)}")
        if key_file is not None:
            _args.path("AuditLog", "key_file", key_file)
        self._key = load_key(key, key_file)
        self._chain = _chain(self.path)
        self._denials: dict[tuple[str, str | None, str], _Denial] = {}
        self._denials_lock = threading.Lock()
        _LOGS.add(self)

    def __repr__(self) -> str:
        keyed = ", keyed" if self._key is not None else ""
        return f"AuditLog({self.path!r}{keyed})"

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def keyed(self) -> bool:
        """Whether records are chained with HMAC-SHA256."""
        return self._key is not None

    @property
    def head(self) -> str:
        """The `hash` of the last record this process wrote or chained to (`GENESIS`
        before any); keep it elsewhere to anchor the chain."""
        return self._chain.head

    def _append(self, record: dict[str, Any]) -> dict[str, Any]:
        return self._chain.append(record, fsync=self.fsync, key=self._key)

    def record(
        self, result: ReloadResult, *, config: str, digest: str | None, instance: str | None = None
    ) -> dict[str, Any]:
        """Append the record of one reload attempt and return it.

        Args:
            result: the attempt.
            config: the Reloader's name.
            digest: the digest of the snapshot live after the attempt.
            instance: the process that ran it (default: `result.instance`): with several
                workers writing one file, every record says whose it is.

        Raises:
            AuditWriteError: the record did not reach the disk (the head did not move).
        """
        changes = (
            [change_to_json(c, action="apply", mark_secret=False) for c in result.applied]
            + [change_to_json(c, action="rolled_back", mark_secret=False) for c in result.attempted]
            + [change_to_json(c, action="reject", mark_secret=False) for c in result.rejected]
        )
        return self._append(
            {
                "ts": _now(),
                "config": config,
                "instance": instance or result.instance or default_instance(),
                "version": result.version,
                "previous_version": result.previous_version,
                "trigger": result.trigger,
                "actor": result.actor,
                "outcome": result.outcome.value,
                "changes": changes,
                "errors": [str(e) for e in result.errors],
                "digest": digest,
                # A rollback names the version it made live again (or tried to).
                **({"rollback_to": result.rollback_to} if result.rollback_to is not None else {}),
            }
        )

    def record_denied(
        self,
        *,
        config: str,
        actor: str | None,
        action: str,
        reason: str,
        version: int | None = None,
        digest: str | None = None,
        instance: str | None = None,
    ) -> dict[str, Any] | None:
        """Record a refused request (HTTP 401/403): outcome `denied`, `trigger` = the
        action asked for (`POST /reload`), `errors` = [reason], `count` = the denials the
        record stands for.

        The first denial of a (config, actor, reason) is written at once; more within
        `denial_window` seconds are only counted (returns None), and go into the next
        record of that key after the window, or into the one `flush()`/`close()` writes.
        A flood of unauthenticated requests costs one fsync per window, and no denial is
        lost from the counts.

        Never pass the credential that was presented: it would be written as is.

        Raises:
            AuditWriteError: the record did not reach the disk; its count is kept for the
                next record of that key.
        """
        now = time.monotonic()
        key = (config, actor, reason)
        with self._denials_lock:
            entry = self._denials.get(key)
            if entry is not None and now - entry.written < self.denial_window:
                entry.pending += 1
                entry.action, entry.version, entry.digest, entry.instance = action, version, digest, instance
                return None
            count = 1 + (entry.pending if entry is not None else 0)
            if len(self._denials) >= 1024:
                self._prune(now)
            self._denials[key] = _Denial(now)
        return self._write_denied(key, action, version, digest, count, instance)

    def _write_denied(
        self,
        key: tuple[str, str | None, str],
        action: str,
        version: int | None,
        digest: str | None,
        count: int,
        instance: str | None = None,
    ) -> dict[str, Any]:
        config, actor, reason = key
        record = {
            "ts": _now(),
            "config": config,
            "instance": instance or default_instance(),
            "version": version,
            "previous_version": version,
            "trigger": action,
            "actor": actor,
            "outcome": "denied",
            "changes": [],
            "errors": [reason],
            "digest": digest,
            "count": count,
        }
        try:
            return self._append(record)
        except AuditWriteError:
            with self._denials_lock:  # keep the count; the next denial of the key retries
                entry = self._denials.setdefault(key, _Denial(float("-inf")))
                entry.pending += count
                entry.written = float("-inf")
                entry.action, entry.version, entry.digest, entry.instance = action, version, digest, instance
            raise

    def _prune(self, now: float) -> None:
        # Many actors (a scan from many addresses): forget keys with nothing pending.
        for k in [k for k, e in self._denials.items() if e.pending == 0 and now - e.written >= self.denial_window]:
            del self._denials[k]

    def _forget_denials(self) -> None:
        self._denials_lock = threading.Lock()
        self._denials = {}  # the parent's counts: the parent writes them

    def flush(self) -> list[dict[str, Any]]:
        """Write a record for every key with denials still only counted; returns them.

        Raises:
            AuditWriteError: one could not be written (its count, and those not yet
                written, are kept).
        """
        with self._denials_lock:
            due = [(k, e) for k, e in self._denials.items() if e.pending]
            for k, _ in due:
                del self._denials[k]
        written = []
        for i, (k, e) in enumerate(due):
            try:
                written.append(self._write_denied(k, e.action, e.version, e.digest, e.pending, e.instance))
            except AuditWriteError:
                with self._denials_lock:
                    for k2, e2 in due[i + 1 :]:  # not tried: back with their counts
                        current = self._denials.get(k2)
                        if current is None:
                            self._denials[k2] = e2
                        else:
                            current.pending += e2.pending
                raise
        return written

    def close(self) -> None:
        """Write the pending denial counts (`flush()`); the log can still be used after."""
        self.flush()

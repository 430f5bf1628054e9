"""A tamper-evident audit log: JSON Lines, one fsynced record per attempt, hash-chained.

Each record carries `prev_hash` (the `hash` of the record before it, or `GENESIS` for
the first) and `hash`: sha256 over the canonical JSON of the record without `hash`:
compact (`,` and `:` separators), UTF-8, fields in the order written. The line on disk
is exactly that text with `,"hash":"..."` added before the closing brace, so writing a
record costs one JSON encoding. With a key, `hash` is HMAC-SHA256 under that key and
the record says so (`"alg":"hmac-sha256"`, before `prev_hash`): without the key nobody
can rewrite the file and recompute the chain.

Editing, removing or reordering records breaks the chain at the records touched, and
`verify_audit()` names every such line. A torn line (a write cut short by a crash, a
full disk or a file size limit) is not tampering: the writer starts the next record on
a fresh line chained to the last intact record, and `verify_audit()` reports the torn
line and checks the chain across it. A keyless chain cannot stop someone who rewrites
the whole file and recomputes every hash: use a key, or anchor the chain by keeping
`AuditLog.head` (the last hash) somewhere else.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import hashlib
import hmac
import json
import os
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any, Final

import attrs

from ._change import Change
from ._errors import AuditWriteError
from ._mask import plain
from ._result import ReloadResult

try:  # POSIX: also keeps writers in other processes from interleaving the chain.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

GENESIS: Final = "0" * 64
"""The `prev_hash` of the first record of a file."""

HMAC_SHA256: Final = "hmac-sha256"
"""The `alg` of a keyed record (keyless records carry no `alg`: plain sha256)."""

_TAIL_BLOCK = 64 * 1024
_MAX_LINE = 64 * 1024 * 1024  # longer lines are read in pieces and reported, never held whole
_MAX_NAMED = 10_000  # lines named per kind in a verification; the rest are counted
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _encode(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: compact UTF-8 JSON of every field but `hash`, in
    the record's order (JSON parsers keep key order, so a reader rebuilds it exactly)."""
    return _encode({k: v for k, v in record.items() if k != "hash"}).encode()


def _mac(body: bytes, key: bytes | None) -> str:
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def record_hash(record: dict[str, Any], *, key: bytes | None = None) -> str:
    """sha256 (hex) of `canonical(record)`; HMAC-SHA256 under `key` when given."""
    return _mac(canonical(record), key)


def load_key(key: bytes | str | None = None, key_file: str | os.PathLike[str] | None = None) -> bytes | None:
    """The HMAC key from `key` or from the contents of `key_file` (surrounding whitespace
    stripped), or None for a keyless chain.

    Raises:
        ValueError: both given, or the key is empty.
        OSError: `key_file` cannot be read.
    """
    if key is not None and key_file is not None:
        raise ValueError("give the audit key or a key file, not both")
    if key_file is not None:
        with open(key_file, "rb") as fh:
            key = fh.read().strip()
        if not key:
            raise ValueError(f"{os.fspath(key_file)}: the audit key file is empty")
    if isinstance(key, str):
        key = key.encode()
    if key is not None and not key:
        raise ValueError("the audit key is empty")
    return key


def _change(c: Change, action: str) -> dict[str, Any]:
    return {
        "path": c.path,
        "old": plain(c.old, secret=c.secret),
        "new": plain(c.new, secret=c.secret),
        "policy": c.policy.value,
        "action": action,
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def _lock(fd: int, *, shared: bool = False) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)


def _unlock(fd: int) -> None:
    if fcntl is not None:
        with contextlib.suppress(OSError):  # closing the descriptor releases it too
            fcntl.flock(fd, fcntl.LOCK_UN)


def _last_hash(fd: int, size: int) -> tuple[str, bool]:
    """The `hash` of the last intact record below `size`, and whether the file ends in a
    newline. A torn last line (a crash mid-write) is skipped: the chain goes on from the
    record before it, and `verify_audit` reports the torn line."""
    if size == 0:
        return GENESIS, True
    ends_with_newline = os.pread(fd, 1, size - 1) == b"\n"
    end = size
    carry = b""
    while end > 0:
        start = max(0, end - _TAIL_BLOCK)
        chunk = os.pread(fd, end - start, start) + carry
        lines = chunk.split(b"\n")
        # The first piece may be the end of a line that starts in an earlier block.
        carry = lines[0] if start > 0 else b""
        complete = lines[1:] if start > 0 else lines
        for line in reversed(complete):
            found = _hash_of(line)
            if found is not None:
                return found, ends_with_newline
        end = start
    return GENESIS, ends_with_newline


def _hash_of(line: bytes) -> str | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    value = record.get("hash") if isinstance(record, dict) else None
    return value if isinstance(value, str) else None


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
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _O_CLOEXEC, 0o600)
        if created:
            _fsync_dir(self.path)
        st = os.fstat(fd)
        self.fd, self.ident, self.end = fd, (st.st_dev, st.st_ino), -1
        return fd

    def append(self, record: dict[str, Any], *, fsync: bool, key: bytes | None) -> dict[str, Any]:
        with self.lock:
            try:
                fd = self._open()
                _lock(fd)
            except OSError as exc:
                raise _write_error(self.path, exc, record) from exc
            try:
                return self._append_locked(fd, record, fsync=fsync, key=key)
            finally:
                _unlock(fd)

    def _append_locked(self, fd: int, record: dict[str, Any], *, fsync: bool, key: bytes | None) -> dict[str, Any]:
        try:
            size = os.fstat(fd).st_size
            newline_missing = False
            if size != self.end:
                # First write, a failed one, or another process (a forked child, a second
                # worker) appended or truncated: chain to what is on disk, under the lock.
                self.head, ends = _last_hash(fd, size)
                newline_missing = not ends
        except OSError as exc:
            self.end = -1
            raise _write_error(self.path, exc, record) from exc
        if key is not None:
            record["alg"] = HMAC_SHA256
        record["prev_hash"] = self.head
        body = _encode(record).encode()
        digest = _mac(body, key)
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
        self.path = os.fspath(path)
        self.fsync = fsync
        self.denial_window = denial_window
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

    def record(self, result: ReloadResult, *, config: str, digest: str | None) -> dict[str, Any]:
        """Append the record of one reload attempt and return it.

        Args:
            result: the attempt.
            config: the Reloader's name.
            digest: the digest of the snapshot live after the attempt.

        Raises:
            AuditWriteError: the record did not reach the disk (the head did not move).
        """
        changes = (
            [_change(c, "apply") for c in result.applied]
            + [_change(c, "rolled_back") for c in result.attempted]
            + [_change(c, "reject") for c in result.rejected]
        )
        return self._append(
            {
                "ts": _now(),
                "config": config,
                "version": result.version,
                "previous_version": result.previous_version,
                "trigger": result.trigger,
                "actor": result.actor,
                "outcome": result.outcome.value,
                "changes": changes,
                "errors": [str(e) for e in result.errors],
                "digest": digest,
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
                entry.action, entry.version, entry.digest = action, version, digest
                return None
            count = 1 + (entry.pending if entry is not None else 0)
            if len(self._denials) >= 1024:
                self._prune(now)
            self._denials[key] = _Denial(now)
        return self._write_denied(key, action, version, digest, count)

    def _write_denied(
        self, key: tuple[str, str | None, str], action: str, version: int | None, digest: str | None, count: int
    ) -> dict[str, Any]:
        config, actor, reason = key
        record = {
            "ts": _now(),
            "config": config,
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
                entry.action, entry.version, entry.digest = action, version, digest
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
                written.append(self._write_denied(k, e.action, e.version, e.digest, e.pending))
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


@attrs.frozen
class AuditProblem:
    """One line `verify_audit` did not accept as an intact record.

    Attributes:
        line: 1-based line number.
        kind: `torn` (a write cut short: not tampering, the chain continues across it),
            `tampered` (edited, removed around, inserted or moved), or `keyed` (an
            HMAC record checked without the key).
        reason: what was found.
    """

    line: int
    kind: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@attrs.frozen
class AuditVerification:
    """What `verify_audit` found.

    Attributes:
        ok: no record was tampered with and every one could be checked (torn lines
            allowed: they are reported in `torn`).
        records: the number of lines in the file.
        first_bad: the 1-based line of the first tampered (or unverifiable) record, or
            `None` when `ok`.
        reason: why that line is bad (`""` when `ok`).
        last_hash: the `hash` of the last record that verified (`GENESIS` for an empty file).
        torn: the lines that are torn writes (the first 10,000).
        tampered: the lines that are tampered with (the first 10,000).
        problems: every torn, tampered or unverifiable line with its reason (the first
            10,000 of each kind); `omitted` counts those left out.
    """

    ok: bool
    records: int
    first_bad: int | None = None
    reason: str = ""
    last_hash: str = GENESIS
    torn: tuple[int, ...] = ()
    tampered: tuple[int, ...] = ()
    problems: tuple[AuditProblem, ...] = ()
    omitted: int = 0

    def __str__(self) -> str:
        torn = ""
        if self.torn:
            torn = f"; {len(self.torn)} torn line{'s' if len(self.torn) > 1 else ''} skipped ({_lines_text(self.torn)})"
        if self.ok:
            return f"ok: {self.records} records, chain intact (head {self.last_hash[:16]}){torn}"
        return f"line {self.first_bad}: {self.reason}"


def _lines_text(lines: tuple[int, ...], shown: int = 10) -> str:
    text = ", ".join(str(n) for n in lines[:shown])
    return text + (f", +{len(lines) - shown} more" if len(lines) > shown else "")


@attrs.frozen
class AuditLine:
    """One line as the scan saw it: a record (None for a torn or garbage line), and its
    problem (`kind` is "" for an intact record)."""

    number: int
    record: dict[str, Any] | None
    kind: str = ""
    reason: str = ""


def _snapshot_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line without its newline) up to the size the file had under a shared
    lock: every writer appends under the exclusive lock, so no half-written record is
    read (a verify racing appends once saw one). The lock is not held while reading, so
    writers never wait for a long verify. Lines over `_MAX_LINE` come as None."""
    with open(path, "rb") as fh:
        _lock(fh.fileno(), shared=True)
        try:
            left = os.fstat(fh.fileno()).st_size
        finally:
            _unlock(fh.fileno())
        number = 0
        while left > 0:
            line = fh.readline(min(left, _MAX_LINE + 1))
            if not line:
                return  # truncated under us
            left -= len(line)
            number += 1
            if line.endswith(b"\n"):
                yield number, line[:-1]
            elif len(line) > _MAX_LINE:
                while left > 0 and not line.endswith(b"\n"):  # skip it in bounded pieces
                    line = fh.readline(min(left, _TAIL_BLOCK))
                    left -= len(line)
                    if not line:
                        return
                yield number, None
            else:
                yield number, line  # the last line, without a newline


def _torn(raw: bytes) -> bool:
    """A line that cannot be a whole record but can be the start of one: what a write cut
    short leaves (possibly padded with NULs by a crash), never an edit that hides a
    record: the record after it must still chain to the one before it."""
    body = raw.strip(b"\0")
    return bool(raw) and (not body or body.startswith(b"{"))


def scan_audit(path: str | os.PathLike[str], *, key: bytes | None = None) -> Iterator[AuditLine]:
    """Every line with its verdict, streamed (what `audit show` prints)."""
    for line in _scan(path, key):
        yield AuditLine(*line)


_decode = json.JSONDecoder().decode  # on str: json.loads(bytes) guesses the encoding each time


def _scan(path: str | os.PathLike[str], key: bytes | None) -> Iterator[tuple[int, dict[str, Any] | None, str, str]]:
    """(line, record, kind, reason) of every line. After a bad record the check goes on
    from the hash that record claims, so every later edit is found too."""
    expected = GENESIS
    expected_line = 0
    for number, raw in _snapshot_lines(path):
        if raw is None:
            yield number, None, "tampered", f"longer than {_MAX_LINE} bytes: not an audit record"
            continue
        try:
            record = _decode(raw.decode())
        except ValueError:  # UnicodeDecodeError included: a write cut inside a character
            if _torn(raw):
                yield number, None, "torn", f"torn line ({len(raw)} bytes): a write cut short, skipped"
            else:
                yield number, None, "tampered", "not a JSON record: an edit"
            continue
        claimed = record.get("hash") if type(record) is dict else None
        if type(claimed) is not str:
            yield number, None, "tampered", "not an audit record (no hash)"
            continue
        kind, reason = _check(raw, record, claimed, key)
        if not kind and record.get("prev_hash") != expected:
            where = "the start of the file" if expected_line == 0 else f"line {expected_line}"
            kind, reason = "tampered", f"prev_hash does not follow {where}: a record was removed, inserted or moved"
        yield number, record, kind, reason
        expected, expected_line = claimed, number


def _check(raw: bytes, record: dict[str, Any], claimed: str, key: bytes | None) -> tuple[str, str]:
    alg = record.get("alg")
    if alg is None:
        if key is not None:
            return "tampered", "not keyed (no alg): written without the key, or the file was rewritten"
    elif alg != HMAC_SHA256:
        return "tampered", f"unknown alg {alg!r}"
    elif key is None:
        return "keyed", "hmac-sha256 record: verify it with the key"
    used = key if alg is not None else None
    # The line as written is the hashed body plus the hash: check those bytes (no
    # re-encoding), and the canonical form only for a line some tool reformatted.
    cut = len(raw) - 75  # ,"hash":" + 64 hex + "}
    fast = cut > 0 and raw[cut:] == b',"hash":"' + claimed.encode() + b'"}'
    if fast and hmac.compare_digest(_mac(raw[:cut] + b"}", used), claimed):
        return "", ""
    if hmac.compare_digest(record_hash(record, key=used), claimed):
        return "", ""
    return "tampered", "hash does not match the content: the record was edited"


def verify_audit(
    path: str | os.PathLike[str],
    *,
    key: bytes | str | None = None,
    key_file: str | os.PathLike[str] | None = None,
) -> AuditVerification:
    """Check every record's hash and the chain from `GENESIS`; name every bad line.

    An edited record fails its own hash; a removed, inserted or moved one breaks the
    `prev_hash` link of the record at its place. A torn line (a write cut short) is
    reported as torn and skipped: the record after it chains to the last intact record.
    Removing records from the end leaves a valid shorter chain: compare `last_hash` with
    an `AuditLog.head` kept elsewhere. The file is streamed (memory does not grow with
    it) up to its size under a shared lock, so appends during a verify are not misread.

    Args:
        path: the audit file.
        key, key_file: the HMAC key of a keyed chain: then every record must be keyed.
            Without one, keyed records are reported as unverifiable (kind `keyed`).

    Raises:
        OSError: the file (or the key file) cannot be read.
        ValueError: both `key` and `key_file`, or an empty key.
    """
    secret = load_key(key, key_file)
    count = 0
    last_good = GENESIS
    first: AuditProblem | None = None
    named: dict[str, list[int]] = {"torn": [], "tampered": [], "keyed": []}
    problems: list[AuditProblem] = []
    omitted = 0
    for number, record, kind, reason in _scan(path, secret):
        count = number
        if not kind:
            last_good = record["hash"] if record is not None else last_good
            continue
        problem = AuditProblem(number, kind, reason)
        if first is None and kind != "torn":
            first = problem
        if len(named[kind]) < _MAX_NAMED:
            named[kind].append(number)
            problems.append(problem)
        else:
            omitted += 1
    return AuditVerification(
        first is None,
        count,
        first.line if first is not None else None,
        first.reason if first is not None else "",
        last_good,
        tuple(named["torn"]),
        tuple(named["tampered"]),
        tuple(problems),
        omitted,
    )


def audit_head(path: str | os.PathLike[str]) -> str:
    """The `hash` of the last intact record of the file (`GENESIS` when empty), read from
    its tail under a shared lock. Not a verification: run `verify_audit` for that.

    Raises:
        OSError: the file cannot be read.
    """
    fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    try:
        _lock(fd, shared=True)
        return _last_hash(fd, os.fstat(fd).st_size)[0]
    finally:
        os.close(fd)


def read_audit(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of an audit file, in order; torn lines (writes cut short) are skipped.
    Run `verify_audit` to trust them.

    Raises:
        ValueError: a line is not a JSON record and not a torn write (`file:line: ...`).
        OSError: the file cannot be read.
    """
    records = []
    name = os.fspath(path)
    for number, raw in _snapshot_lines(path):
        if raw is None:
            raise ValueError(f"{name}:{number}:1: not a JSON record: longer than {_MAX_LINE} bytes")
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            if _torn(raw):
                continue
            raise ValueError(f"{name}:{number}:{exc.colno}: not a JSON record: {exc.msg}") from None
        except ValueError as exc:
            if _torn(raw):
                continue
            raise ValueError(f"{name}:{number}:1: not a JSON record: {exc}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{name}:{number}:1: not a JSON object")
        records.append(record)
    return records

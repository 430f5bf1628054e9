"""A tamper-evident audit log: JSON Lines, one fsynced record per attempt, hash-chained.

Each record carries `prev_hash` (the `hash` of the record before it, or `GENESIS` for
the first) and `hash`: sha256 over the canonical JSON of the record without `hash`:
compact (`,` and `:` separators), UTF-8, fields in the order written. The line on disk
is exactly that text with `,"hash":"..."` added before the closing brace, so writing a
record costs one JSON encoding.
Editing, removing or reordering records breaks the chain at the first record touched,
and `verify_audit()` names its line. A keyless chain cannot stop someone who rewrites
the whole file and recomputes every hash: anchor it by keeping `AuditLog.head` (the
last hash) somewhere else.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from typing import Any, Final

import attrs

from ._change import Change
from ._mask import plain
from ._result import ReloadResult

try:  # POSIX: also keeps writers in other processes from interleaving the chain.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

GENESIS: Final = "0" * 64
"""The `prev_hash` of the first record of a file."""

_TAIL_BLOCK = 64 * 1024


def _encode(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: compact UTF-8 JSON of every field but `hash`, in
    the record's order (JSON parsers keep key order, so a reader rebuilds it exactly)."""
    return _encode({k: v for k, v in record.items() if k != "hash"}).encode()


def record_hash(record: dict[str, Any]) -> str:
    """sha256 (hex) of `canonical(record)`."""
    return hashlib.sha256(canonical(record)).hexdigest()


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


def _last_hash(fd: int, size: int) -> tuple[str, bool]:
    """The `hash` of the last intact record at the end of the file, and whether the file
    ends in a newline. A torn last line (a crash mid-write) is skipped: the chain goes on
    from the record before it, and `verify_audit` reports the torn line."""
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
        self.newline_missing = False

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
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        if created:
            _fsync_dir(self.path)
        st = os.fstat(fd)
        self.fd, self.ident, self.end = fd, (st.st_dev, st.st_ino), -1
        return fd

    def append(self, record: dict[str, Any], *, fsync: bool) -> dict[str, Any]:
        with self.lock:
            fd = self._open()
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                if size != self.end:
                    # First write, or another process appended or truncated: re-read the tail.
                    rfd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                    try:
                        self.head, ends = _last_hash(rfd, size)
                    finally:
                        os.close(rfd)
                    self.newline_missing = not ends
                record["prev_hash"] = self.head
                body = _encode(record).encode()
                record["hash"] = digest = hashlib.sha256(body).hexdigest()
                line = body[:-1] + b',"hash":"' + digest.encode() + b'"}\n'
                data = (b"\n" if self.newline_missing else b"") + line
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if fsync:
                    os.fsync(fd)
                self.head = record["hash"]
                self.end = size + len(data)
                self.newline_missing = False
            finally:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            return record


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


def _chain(path: str) -> _Chain:
    key = os.path.realpath(path)
    with _CHAINS_LOCK:
        chain = _CHAINS.get(key)
        if chain is None:
            chain = _CHAINS[key] = _Chain(key)
        return chain


class AuditLog:
    """Appends one hash-chained JSON record per reload attempt (UNCHANGED ones excepted).

    Every AuditLog on the same file in one process shares one lock and one chain, so two
    Reloaders can write to one file; writers in other processes are serialised by `flock`.

    Args:
        path: the JSON Lines file; created (mode 0600) when missing, continued when present.
        fsync: `os.fsync` after every record (default). Off only where losing the last
            records in a power cut is acceptable.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = os.fspath(path)
        self.fsync = fsync
        self._chain = _chain(self.path)

    def __repr__(self) -> str:
        return f"AuditLog({self.path!r})"

    @property
    def head(self) -> str:
        """The `hash` of the last record this process wrote (`GENESIS` before any)."""
        return self._chain.head

    def record(self, result: ReloadResult, *, config: str, digest: str | None) -> dict[str, Any]:
        """Append the record of one reload attempt and return it.

        Args:
            result: the attempt.
            config: the Reloader's name.
            digest: the digest of the snapshot live after the attempt.
        """
        changes = (
            [_change(c, "apply") for c in result.applied]
            + [_change(c, "rolled_back") for c in result.attempted]
            + [_change(c, "reject") for c in result.rejected]
        )
        return self._chain.append(
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
            },
            fsync=self.fsync,
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
    ) -> dict[str, Any]:
        """Append the record of a refused request (HTTP 401/403): outcome `denied`,
        `trigger` = the action asked for (`POST /reload`), `errors` = [reason].

        Never pass the credential that was presented: it would be written as is.
        """
        return self._chain.append(
            {
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
            },
            fsync=self.fsync,
        )


@attrs.frozen
class AuditVerification:
    """What `verify_audit` found.

    Attributes:
        ok: every record is intact and the chain is unbroken.
        records: the number of records (lines) in the file.
        first_bad: the 1-based line of the first record edited, removed around or moved,
            or `None` when `ok`.
        reason: why that line is bad (`""` when `ok`).
        last_hash: the `hash` of the last record that verified (`GENESIS` for an empty file).
    """

    ok: bool
    records: int
    first_bad: int | None = None
    reason: str = ""
    last_hash: str = GENESIS

    def __str__(self) -> str:
        if self.ok:
            return f"ok: {self.records} records, chain intact (head {self.last_hash[:16]})"
        return f"line {self.first_bad}: {self.reason}"


def _lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, bytes]]:
    # Streamed: an audit file grows for the life of a service.
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            yield lineno, line[:-1] if line.endswith(b"\n") else line


def verify_audit(path: str | os.PathLike[str]) -> AuditVerification:
    """Check every record's hash and the chain from `GENESIS`; report the first bad line.

    An edited record fails its own hash; a removed, inserted or moved one breaks the
    `prev_hash` link of the record at its place. Removing records from the end leaves
    a valid shorter chain: compare `last_hash` with an `AuditLog.head` kept elsewhere.

    Raises:
        OSError: the file cannot be read.
    """
    expected = GENESIS
    count = 0
    bad: tuple[int, str] | None = None
    for lineno, raw in _lines(path):
        count += 1
        if bad is not None:
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            bad = (lineno, f"not a JSON record ({exc.__class__.__name__}): torn write or edit")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("hash"), str):
            bad = (lineno, "not an audit record (no hash)")
            continue
        if record_hash(record) != record["hash"]:
            bad = (lineno, "hash does not match the content: the record was edited")
        elif record.get("prev_hash") != expected:
            where = "the start of the file" if expected == GENESIS else f"line {lineno - 1}"
            bad = (lineno, f"prev_hash does not follow {where}: a record was removed, inserted or moved")
        else:
            expected = record["hash"]
    if bad is None:
        return AuditVerification(True, count, last_hash=expected)
    return AuditVerification(False, count, bad[0], bad[1], expected)


def read_audit(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of an audit file, in order (run `verify_audit` to trust them).

    Raises:
        ValueError: a line is not a JSON object (`file:line:col: ...`).
        OSError: the file cannot be read.
    """
    records = []
    name = os.fspath(path)
    for lineno, raw in _lines(path):
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name}:{lineno}:{exc.colno}: not a JSON record: {exc.msg}") from None
        except ValueError as exc:
            raise ValueError(f"{name}:{lineno}:1: not a JSON record: {exc}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{name}:{lineno}:1: not a JSON object")
        records.append(record)
    return records

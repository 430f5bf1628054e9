"""Reading an audit file: `verify_audit`, `scan_audit`, `read_audit`, `audit_head`."""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Iterator
from typing import Any

import attrs

from ._audit_chain import (
    GENESIS,
    HMAC_SHA256,
    O_CLOEXEC,
    TAIL_BLOCK,
    last_hash,
    load_key,
    lock_file,
    mac,
    record_hash,
    unlock_file,
)
from ._values import TooDeep, load_json

_MAX_LINE = 64 * 1024 * 1024  # longer lines are read in pieces and reported, never held whole
_MAX_NAMED = 10_000  # lines named per kind in a verification; the rest are counted


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
        lock_file(fh.fileno(), shared=True)
        try:
            left = os.fstat(fh.fileno()).st_size
        finally:
            unlock_file(fh.fileno())
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
                    line = fh.readline(min(left, TAIL_BLOCK))
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
            record = load_json(raw)
        except TooDeep as exc:  # a write cut short cannot nest deeper than what was written
            yield number, None, "tampered", f"not a JSON record: {exc}: an edit"
            continue
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
    if fast and hmac.compare_digest(mac(raw[:cut] + b"}", used), claimed):
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
    fd = os.open(path, os.O_RDONLY | O_CLOEXEC)
    try:
        lock_file(fd, shared=True)
        return last_hash(fd, os.fstat(fd).st_size)[0]
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
            record = load_json(raw)
        except TooDeep as exc:
            raise ValueError(f"{name}:{number}:1: not a JSON record: {exc}") from None
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

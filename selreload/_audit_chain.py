"""The audit file format: canonical JSON, the (keyed) hash chain, its tail read under `flock`.

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

import contextlib
import hashlib
import hmac
import json
import os
from typing import Any, Final

from ._values import load_json

try:  # POSIX: also keeps writers in other processes from interleaving the chain.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

GENESIS: Final = "0" * 64
"""The `prev_hash` of the first record of a file."""

HMAC_SHA256: Final = "hmac-sha256"
"""The `alg` of a keyed record (keyless records carry no `alg`: plain sha256)."""

TAIL_BLOCK: Final = 64 * 1024
"""How much of the file's tail one read takes when looking for the last record."""

O_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)


def encode(record: dict[str, Any]) -> str:
    """A record as compact JSON, in its key order (what the hash covers, once `hash` is cut)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)


def encoded(record: dict[str, Any]) -> bytes:
    """`encode(record)` in UTF-8. An unpaired surrogate (from a JSON `\\ud800` escape or a
    file name of undecodable bytes) is written as its JSON escape, which a reader decodes
    back to the same string: the line stays valid UTF-8 and its hash verifies."""
    return encode(record).encode("utf-8", "backslashreplace")


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's hash covers: compact UTF-8 JSON of every field but `hash`, in
    the record's order (JSON parsers keep key order, so a reader rebuilds it exactly)."""
    return encoded({k: v for k, v in record.items() if k != "hash"})


def mac(body: bytes, key: bytes | None) -> str:
    """sha256 (hex) of `body`, or HMAC-SHA256 under `key`."""
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def record_hash(record: dict[str, Any], *, key: bytes | None = None) -> str:
    """sha256 (hex) of `canonical(record)`; HMAC-SHA256 under `key` when given."""
    return mac(canonical(record), key)


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


def lock_file(fd: int, *, shared: bool = False) -> None:
    """`flock` the open file description of `fd` (exclusive, or shared for readers)."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)


def unlock_file(fd: int) -> None:
    """Release `lock_file`."""
    if fcntl is not None:
        with contextlib.suppress(OSError):  # closing the descriptor releases it too
            fcntl.flock(fd, fcntl.LOCK_UN)


def last_hash(fd: int, size: int) -> tuple[str, bool]:
    """The `hash` of the last intact record below `size`, and whether the file ends in a
    newline. A torn last line (a crash mid-write) is skipped: the chain goes on from the
    record before it, and `verify_audit` reports the torn line."""
    if size == 0:
        return GENESIS, True
    ends_with_newline = os.pread(fd, 1, size - 1) == b"\n"
    end = size
    carry = b""
    while end > 0:
        start = max(0, end - TAIL_BLOCK)
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
        record = load_json(line)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        return None
    value = record.get("hash") if isinstance(record, dict) else None
    return value if isinstance(value, str) else None

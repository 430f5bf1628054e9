"""The rollout record in etcd (`{key}.rollout`) and the candidate beside it (`{key}.candidate`).

The record is the one truth about a progressive rollout: the CLI that runs it, a second
operator's `rollout status`, and every instance (which loads the candidate only while the
record names it a canary, and the candidate's digest matches) all read it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import attrs

from ._values import load_json, one_line


def rollout_key(key: str) -> str:
    return f"{key}.rollout"


def candidate_key(key: str) -> str:
    return f"{key}.candidate"


def lock_key(key: str) -> str:
    """Held, under a lease, by the `push` or `rollout resume` driving the rollout now."""
    return f"{key}.rollout.lock"


def digest(document: bytes) -> str:
    return hashlib.sha256(document).hexdigest()


_STAGE = re.compile(r"^(\d+(?:\.\d+)?)(%?)$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


def parse_stages(text: str) -> tuple[str, ...]:
    """`"1,10%,100%"` -> `("1", "10%", "100%")`, checked; `100%` is added when missing.

    Raises:
        ValueError: a stage that is not a count or a percentage, or stages that shrink.
    """
    stages: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        match = _STAGE.match(item)
        if not match or (match.group(2) and not 0 < float(match.group(1)) <= 100) or float(match.group(1)) <= 0:
            raise ValueError(f"--canary: {item!r}: expected a count (2) or a percentage (10%) above 0")
        if not match.group(2) and "." in match.group(1):
            raise ValueError(f"--canary: {item!r}: a count of instances is a whole number")
        stages.append(item)
    if not stages:
        raise ValueError("--canary: no stage given")
    if stages[-1] != "100%":
        stages.append("100%")
    return tuple(stages)


def stage_size(stage: str, total: int) -> int:
    """How many instances a stage names, of `total` live ones (at least one)."""
    if stage.endswith("%"):
        return max(1, min(total, math.ceil(total * float(stage[:-1]) / 100)))
    return max(1, min(total, int(stage)))


def parse_duration(text: str) -> float:
    """`"30s"`, `"2m"`, `"500ms"`, `"1h"` or plain seconds -> seconds.

    Raises:
        ValueError: anything else.
    """
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r}: expected a duration such as 30s, 2m, 500ms")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) * scale


@attrs.frozen
class RolloutRecord:
    """One rollout in progress.

    Attributes:
        id: names the rollout in messages.
        file: the file pushed.
        base_revision: the key's revision the candidate was planned against; promotion
            writes the candidate only if the key is still there (compare-and-swap).
        digest: sha256 of the candidate; an instance loads the candidate only if it matches.
        stages: the stage sizes (`"1"`, `"10%"`, ..., `"100%"`: promotion).
        stage: the index of the stage running now.
        canaries: the instances that run the candidate now.
        bake: seconds canaries must stay healthy before the next stage.
        timeout: seconds canaries have to ACK a stage.
        actor: who started it.
        started: when (ISO 8601).
        revision: the record's `mod_revision` (not stored in the record: etcd's).
    """

    id: str
    file: str
    base_revision: int
    digest: str
    stages: tuple[str, ...]
    stage: int
    canaries: tuple[str, ...]
    bake: float
    timeout: float
    actor: str
    started: str
    revision: int = 0

    def to_json(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["stages"], out["canaries"] = list(self.stages), list(self.canaries)
        del out["revision"]
        return out

    def dumps(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode("utf-8")

    @classmethod
    def loads(cls, body: bytes, revision: int) -> RolloutRecord:
        """Raises ValueError: not a rollout record."""
        try:
            doc = load_json(body)
            return cls(
                id=str(doc["id"]),
                file=str(doc["file"]),
                base_revision=int(doc["base_revision"]),
                digest=str(doc["digest"]),
                stages=tuple(str(s) for s in doc["stages"]),
                stage=int(doc["stage"]),
                canaries=tuple(str(c) for c in doc["canaries"]),
                bake=float(doc["bake"]),
                timeout=float(doc["timeout"]),
                actor=str(doc.get("actor", "")),
                started=str(doc.get("started", "")),
                revision=revision,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a rollout record: {exc}") from None

    def summary(self) -> str:
        """One line: the rollout, its stage and its canaries."""
        names = ", ".join(self.canaries) or "none yet"
        return one_line(  # read back from etcd: any of it may hold a newline or an escape code
            f"rollout {self.id} of {self.file}: stage {self.stage + 1} of {len(self.stages)}"
            f" ({','.join(self.stages)}), {len(self.canaries)} canar{'y' if len(self.canaries) == 1 else 'ies'}:"
            f" {names}; base revision {self.base_revision}, bake {self.bake:g}s, by {self.actor or '?'}"
        )


def canary_value(record_body: bytes | None, candidate: bytes | None, instance: str) -> bool:
    """Whether `instance` runs the candidate: the record names it, and the candidate is the
    one the record describes (a half-seen write, or a stale candidate, is never loaded)."""
    if record_body is None or candidate is None:
        return False
    try:
        doc = load_json(record_body)
    except ValueError:
        return False
    if not isinstance(doc, dict) or instance not in (doc.get("canaries") or ()):
        return False
    return doc.get("digest") == digest(candidate)

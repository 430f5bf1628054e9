"""Fleet operations on etcd: who runs which revision (`fleet_status`), and a guarded `push`.

Both are one-shot calls for the CLI (`selreload fleet status`, `selreload push`): they run
aetcd on a private loop thread, so they work from synchronous code and from inside a
running event loop alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable
from typing import Any

import attrs

from . import _boundary
from ._errors import ConfigError
from ._etcd_access import Access, access
from ._etcd_client import run_sync, with_client
from ._plan import plan
from ._policy import PolicyInput, load_policies
from ._present import fleet_summary, fleet_table
from ._result import Outcome
from ._rollout_record import RolloutRecord, rollout_key
from ._schema import Schema
from ._structure import Structurer
from ._values import load_json, one_line
from ._yaml import parse_document


def _default_prefix(key: str) -> str:
    return f"{key}.status"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    # A status record is written by another instance, or by anyone who can write to etcd:
    # its text reaches `fleet status`, the rollout's narration and its messages.
    return one_line(str(value))


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(_text(v) for v in value) if isinstance(value, list) else ()


@attrs.frozen
class FleetRow:
    """One instance's last report.

    Attributes:
        instance: its name (`hostname-pid` unless set).
        version: its live config version.
        revision: the etcd revision its last attempt read (ACKed or NACKed).
        applied_revision: the etcd revision its live config came from.
        outcome: `applied`, `unchanged`, `rejected` (ACK) or `invalid`, `rolled_back`,
            `degraded` (NACK); `unreadable` when the status is not valid JSON.
        rejected: restart-only paths waiting for a restart.
        errors: why it refused the revision, secrets masked.
        ts: when it reported (ISO 8601, UTC).
        candidate: it runs the rollout's candidate (a canary).
        healthy: its reloader's health and its own check (`None`: not reported).
        health: why it is unhealthy.
        digest: the content digest of its live config (the same config: the same digest).
        overrides_seq: the fleet overrides record it last read; `overrides` those in force
            there (path, actor, ts, expires; no value); `overrides_refused` why it refused some.
        command_seq, command_outcome, command_errors: the last fleet command it ran
            (`selreload rollback`) and how that went.
        history: `(version, digest)` of the snapshots it keeps, oldest first.
    """

    instance: str
    version: int | None
    revision: int | None
    outcome: str
    rejected: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    ts: str | None = None
    applied_revision: int | None = None
    candidate: bool = False
    healthy: bool | None = None
    health: str | None = None
    digest: str | None = None
    overrides_seq: int = 0
    overrides: tuple[dict[str, Any], ...] = ()
    overrides_refused: tuple[str, ...] = ()
    command_seq: int = 0
    command_outcome: str | None = None
    command_errors: tuple[str, ...] = ()
    history: tuple[tuple[int, str], ...] = ()

    @property
    def acked(self) -> bool:
        """The instance accepted the revision: its outcome is an ok one (`Outcome.ok`:
        applied, unchanged or rejected, as `Etcd.report` ACKs them)."""
        try:
            return Outcome(self.outcome).ok
        except ValueError:  # `unreadable`, or a status written by something else
            return False

    @classmethod
    def parse(cls, instance: str, body: bytes) -> FleetRow:
        try:
            doc = load_json(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            return cls(_text(instance), None, None, "unreadable", errors=("status is not a JSON object",))
        revision = _int(doc.get("revision"))
        applied = _int(doc.get("applied_revision"))
        return cls(
            instance=_text(doc.get("instance") or instance),
            version=_int(doc.get("version")),
            revision=revision,
            outcome=_text(doc.get("outcome", "unknown")),
            rejected=_strings(doc.get("rejected")),
            errors=_strings(doc.get("errors")),
            ts=_text(doc["ts"]) if doc.get("ts") is not None else None,
            applied_revision=applied if applied is not None else revision,
            candidate=doc.get("candidate") is True,
            healthy=doc["healthy"] if isinstance(doc.get("healthy"), bool) else None,
            health=_text(doc["health"]) if doc.get("health") else None,
            digest=_text(doc["digest"]) if doc.get("digest") else None,
            overrides_seq=_int(doc.get("overrides_seq")) or 0,
            overrides=tuple(e for e in doc.get("overrides") or () if isinstance(e, dict)),
            overrides_refused=_strings(doc.get("overrides_refused")),
            command_seq=_int(doc.get("command_seq")) or 0,
            command_outcome=_text(doc["command_outcome"]) if doc.get("command_outcome") else None,
            command_errors=_strings(doc.get("command_errors")),
            history=tuple(
                (h[0], _text(h[1]))
                for h in doc.get("history") or ()
                if isinstance(h, list) and len(h) == 2 and _int(h[0])
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "version": self.version,
            "revision": self.revision,
            "applied_revision": self.applied_revision,
            "outcome": self.outcome,
            "rejected": list(self.rejected),
            "errors": list(self.errors),
            "ts": self.ts,
            "candidate": self.candidate,
            "healthy": self.healthy,
            "health": self.health,
            "digest": self.digest,
            "overrides_seq": self.overrides_seq,
            "overrides": list(self.overrides),
            "overrides_refused": list(self.overrides_refused),
            "command_seq": self.command_seq,
            "command_outcome": self.command_outcome,
            "command_errors": list(self.command_errors),
            "history": [list(h) for h in self.history],
        }


@attrs.frozen
class FleetStatus:
    """Every live instance's report on one key, and the key's latest revision.

    Attributes:
        key: the etcd key holding the document.
        latest_revision: the key's `mod_revision`, `None` when the key does not exist.
        rows: one per live instance, by name.
        rollout: the rollout in progress, one line (`None`: none).
    """

    key: str
    latest_revision: int | None
    rows: tuple[FleetRow, ...]
    rollout: str | None = None

    @property
    def on_latest(self) -> int:
        """How many instances run the latest revision (ACKed it)."""
        if self.latest_revision is None:
            return 0
        return sum(1 for r in self.rows if r.applied_revision == self.latest_revision and r.acked)

    def summary(self) -> str:
        """One line: how many run the latest revision, refused it, wait for a restart."""
        return fleet_summary(self)

    def render(self) -> str:
        """The rollout in progress if any, a table (one row per instance; `*` marks a
        canary on the candidate), and the summary line."""
        return (f"{one_line(self.rollout)}\n" if self.rollout else "") + fleet_table(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "latest_revision": self.latest_revision,
            "on_latest": self.on_latest,
            "total": len(self.rows),
            "rollout": self.rollout,
            "instances": [r.to_json() for r in self.rows],
        }


def fleet_status(
    endpoints: str | Access, key: str, *, status_prefix: str | None = None, timeout: float = 5.0
) -> FleetStatus:
    """Read the key's revision and every instance's status under `status_prefix`.

    Raises:
        ConnectionError: no endpoint answered.
    """
    hosts = access(endpoints)
    prefix = (status_prefix or _default_prefix(key)).rstrip("/") + "/"

    async def op(client: Any) -> tuple[int | None, list[tuple[str, bytes]], tuple[bytes, int] | None]:
        # One transaction: the key's revision, the rollout and the statuses at one revision.
        t = client.transactions
        _, (doc, rollout, statuses) = await client.transaction(
            compare=[],
            success=[
                t.get(key.encode()),
                t.get(rollout_key(key).encode()),
                t.get(prefix.encode(), _prefix_end(prefix.encode())),
            ],
            failure=[],
        )
        latest = int(doc[0][1].mod_revision) if doc else None
        rows = [(meta.key.decode("utf-8", "replace")[len(prefix) :], bytes(value)) for value, meta in statuses]
        return latest, rows, (bytes(rollout[0][0]), int(rollout[0][1].mod_revision)) if rollout else None

    latest, raw, record = run_sync(lambda: with_client(hosts, timeout, op), timeout * len(hosts.hosts) + 1.0)
    rows = tuple(sorted((FleetRow.parse(name, body) for name, body in raw), key=lambda r: r.instance))
    try:
        rollout = RolloutRecord.loads(*record).summary() if record is not None else None
    except ValueError as exc:
        rollout = f"{rollout_key(key)}: {exc}"
    return FleetStatus(key, latest, rows, rollout)


def _prefix_end(prefix: bytes) -> bytes:
    # The first key after every key starting with `prefix` (etcd's range_end convention).
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


@attrs.frozen
class PushResult:
    """What `push` did.

    Attributes:
        exit_code: 0 written (or already there), 1 invalid document or a rollout in
            progress (nothing written), 3 the key moved since the plan (nothing written).
        message: one line for people.
        plan: the plan table of the document against what etcd holds (secrets masked).
        revision: the key's revision afterwards: the one written (0), the one planned
            against (1), or the one it moved to (3); `None` if the key does not exist.
    """

    exit_code: int
    message: str
    plan: str
    revision: int | None


@attrs.frozen
class PushPlan:
    """A validated document and the revision it was planned against; `write()` writes it
    only if the key is still at that revision (compare-and-swap).

    Attributes:
        base_revision: the key's `mod_revision` when planned (0: the key did not exist).
        current: the bytes etcd held then (`None`: no key).
        errors: why the document is invalid (then `write()` refuses it).
    """

    endpoints: str | Access
    key: str
    file: str
    document: bytes
    base_revision: int
    current: bytes | None
    plan: str
    errors: str | None = None

    def write(self, *, timeout: float = 5.0) -> PushResult:
        if self.errors is not None:
            return PushResult(1, f"{self.file}: invalid, nothing written", self.plan, self.base_revision or None)
        if self.current == self.document:
            msg = f"etcd {self.key} already holds {self.file} (revision {self.base_revision}): nothing written"
            return PushResult(0, msg, self.plan, self.base_revision)
        hosts = access(self.endpoints)
        key, rkey = self.key.encode(), rollout_key(self.key).encode()

        async def op(client: Any) -> tuple[bool, int, tuple[bytes, int] | None]:
            # Also refused while a rollout is in progress: its promotion would then find the
            # key moved and revert, and the fleet would run neither document for a while.
            t = client.transactions
            ok, responses = await client.transaction(
                compare=[t.mod(key) == self.base_revision, t.version(rkey) == 0],
                success=[t.put(key, self.document)],
                failure=[t.get(key), t.get(rkey)],
            )
            if ok:
                return True, int(responses[0].response_put.header.revision), None
            got, record = responses
            rollout = (bytes(record[0][0]), int(record[0][1].mod_revision)) if record else None
            return False, int(got[0][1].mod_revision) if got else 0, rollout

        ok, revision, rollout = run_sync(lambda: with_client(hosts, timeout, op), timeout * len(hosts.hosts) + 1.0)
        if ok:
            return PushResult(0, f"wrote {self.file} to etcd {self.key} at revision {revision}", self.plan, revision)
        if rollout is not None and revision == self.base_revision:
            try:
                what = RolloutRecord.loads(*rollout).summary()
            except ValueError:
                what = f"a rollout ({rollout_key(self.key)})"
            msg = f"etcd {self.key}: {what} is in progress: nothing written; resume or abort it first"
            return PushResult(1, msg, "", revision)  # one line: the plan is not what went wrong
        now = f"revision {revision}" if revision else "deleted"
        msg = (
            f"etcd {self.key} moved from revision {self.base_revision} to {now} since the plan: "
            "nothing written; run push again to plan against what it holds now"
        )
        return PushResult(3, msg, self.plan, revision or None)


def plan_push(
    endpoints: str | Access,
    key: str,
    schema: type,
    file: str | os.PathLike[str],
    *,
    policies: PolicyInput | Iterable[PolicyInput] | None = None,
    timeout: float = 5.0,
) -> PushPlan:
    """Validate `file` with `schema` and plan it against what etcd holds at `key`.

    Raises:
        ConnectionError: no endpoint answered.
        PolicyError: a policy file cannot be honoured.
    """
    path = os.fspath(file)
    hosts = access(endpoints)
    # Read once: what is validated is exactly what is written.
    try:
        with open(path, "rb") as fh:
            document = fh.read()
    except OSError as exc:
        document = b""
        unreadable: str | None = f"{path}: cannot read: {exc.strerror or exc}"
    else:
        unreadable = None

    async def op(client: Any) -> tuple[bytes | None, int]:
        got = await client.get(key.encode())
        return (bytes(got.value), int(got.mod_revision)) if got is not None else (None, 0)

    current, base = run_sync(lambda: with_client(hosts, timeout, op), timeout * len(hosts.hosts) + 1.0)

    def make(plan: str, errors: str | None = None) -> PushPlan:
        return PushPlan(hosts, key, path, document, base, current, plan, errors)

    if unreadable is not None:
        return make(unreadable, unreadable)
    compiled = Schema(schema, policies=load_policies(policies))
    structurer = Structurer(compiled)
    try:
        candidate = _boundary.structure(
            structurer, [parse_document(path, document, hashlib.sha256(document).hexdigest())]
        )
    except ConfigError as exc:
        return make(str(exc), str(exc))
    live = None
    if current is not None:
        with contextlib.suppress(ConfigError):  # etcd holds no valid document: nothing to diff against
            live = _boundary.structure(structurer, [parse_document(f"etcd:{key}@{base}", current, "etcd")])
    if live is None:
        held_now = "does not exist" if current is None else "holds no valid document"
        return make(f"etcd {key} {held_now}: {path} replaces it whole")
    planned = plan(compiled, live, candidate)
    return make(planned.table(), planned.table() if planned.errors else None)


def push(
    endpoints: str | Access,
    key: str,
    schema: type,
    file: str | os.PathLike[str],
    *,
    policies: PolicyInput | Iterable[PolicyInput] | None = None,
    timeout: float = 5.0,
) -> PushResult:
    """Validate `file`, plan it against etcd, and write it if the key has not moved since.

    Returns:
        a `PushResult`; its `exit_code` is 0 (written), 1 (invalid, nothing written) or
        3 (the key moved since the plan, nothing written).

    Raises:
        ConnectionError: no endpoint answered.
    """
    return plan_push(endpoints, key, schema, file, policies=policies, timeout=timeout).write(timeout=timeout)

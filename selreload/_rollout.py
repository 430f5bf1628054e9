"""Progressive rollout: canaries first, bake, promote; revert on a NACK, ill health or a timeout.

    start:   CAS(key at base, no rollout) -> put {key}.candidate, {key}.rollout (stage 0)
    stage:   name the stage's canaries in the record -> wait for their ACK of the candidate
             -> bake: they stay on it, ACKed and healthy -> next stage
    promote: CAS(key at base, record unchanged) -> put key = candidate, delete both
    revert:  CAS(record unchanged) -> delete both: canaries fall back to key

Everything lives in etcd, so `rollout status` shows it to anyone and `rollout resume`
picks a crashed push up at its stage. The driver holds `{key}.rollout.lock` under a short
lease: a second driver is refused while the first lives, and allowed once it died.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from ._etcd_client import Session, T
from ._etcd_shared import one_shot
from ._fleet import FleetRow, FleetStatus, fleet_status
from ._rollout_record import RolloutRecord, candidate_key, digest, lock_key, rollout_key, stage_size

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from ._etcd_access import Access
    from ._fleet import PushPlan

POLL_S = 0.1
LOCK_TTL = 5


@attrs.frozen
class RolloutResult:
    """How a rollout command ended.

    Attributes:
        exit_code: 0 promoted (or aborted as asked), 1 refused (another rollout, nothing
            to resume), 3 the key moved (reverted), 4 a canary failed (reverted).
        message: one line, or one per failed canary, for people.
    """

    exit_code: int
    message: str


@attrs.frozen
class RolloutStatus:
    """The rollout record (or none) and the fleet's rows."""

    record: RolloutRecord | None
    fleet: FleetStatus
    problem: str | None = None  # what the record key holds instead of a rollout record

    def render(self) -> str:
        if self.record is not None:
            head = self.record.summary()
        else:
            head = self.problem or f"no rollout in progress on {self.fleet.key}"
        return head + "\n" + self.fleet.render()

    def to_json(self) -> dict[str, Any]:
        # The record whole, not the fleet's one-line summary of it (that was shadowing it).
        fleet = self.fleet.to_json()
        rollout = self.record.to_json() if self.record else None
        return {**fleet, "rollout": rollout, "summary": fleet["rollout"], "problem": self.problem}


class _Failed(Exception):
    """A canary NACKed, turned unhealthy, vanished or timed out."""


class _Spoiled(ValueError):
    """The rollout key holds something that is not a rollout record (an edit by hand, a
    writer that is not selreload): `abort` removes it, nothing else reads past it."""


class Rollout:
    """Drives (or inspects, aborts, resumes) the rollout on one key."""

    def __init__(
        self,
        where: Access,
        key: str,
        *,
        timeout: float = 5.0,
        status_prefix: str | None = None,
        say: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.where, self.key, self.timeout = where, key, timeout
        self.status_prefix = status_prefix
        self._say = say
        self._lease: int | None = None
        self._lease_at = 0.0

    # --- etcd, synchronously --------------------------------------------------------------

    def _run(self, fn: Callable[[Session], Coroutine[Any, Any, T]]) -> T:
        return one_shot(self.where, self.key, fn, timeout=self.timeout, budget=self.timeout * 2 + 1.0)

    def _record(self) -> tuple[RolloutRecord | None, bytes | None]:
        keys = (rollout_key(self.key), candidate_key(self.key))
        found, _ = self._run(lambda s: s.read(keys))
        record = found.get(keys[0])
        candidate = found.get(keys[1])
        try:
            parsed = RolloutRecord.loads(record[0], record[1]) if record is not None else None
        except ValueError as exc:
            raise _Spoiled(f"{keys[0]}: {exc}") from None
        return parsed, candidate[0] if candidate is not None else None

    def status(self) -> RolloutStatus:
        try:
            record, _ = self._record()
        except _Spoiled as exc:
            return RolloutStatus(None, self._fleet(), problem=f"{exc}; `selreload rollout abort` removes it")
        return RolloutStatus(record, self._fleet())

    def _fleet(self) -> FleetStatus:
        return fleet_status(self.where, self.key, status_prefix=self.status_prefix, timeout=self.timeout)

    def _lock(self) -> bool:
        """Take the driver lock (a lease-bound key); False while another driver holds it."""
        key = lock_key(self.key).encode()

        async def take(s: Session) -> bool:
            lease = await s.grant(LOCK_TTL)
            ok = await s.txn(lambda t: [t.version(key) == 0], lambda t: [t.put(key, b"driving", lease=lease)])
            if ok:
                self._lease = lease
            else:
                await s.revoke(lease)
            return ok

        self._lease_at = time.monotonic()
        return self._run(take)

    def _keepalive(self) -> None:
        if self._lease is not None and time.monotonic() - self._lease_at > LOCK_TTL / 3:
            lease = self._lease
            self._run(lambda s: s.refresh(lease))
            self._lease_at = time.monotonic()

    def _unlock(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            self._run(lambda s: s.revoke(lease))

    # --- commands -------------------------------------------------------------------------

    def start(
        self, planned: PushPlan, *, stages: tuple[str, ...], bake: float, stage_timeout: float, actor: str
    ) -> RolloutResult:
        """Write the candidate and the record (compare-and-swap on the key), then drive."""
        if planned.current == planned.document:
            return RolloutResult(0, f"etcd {self.key} already holds {planned.file}: nothing to roll out")
        if not self._lock():
            try:
                got, _ = self._record()
            except _Spoiled as exc:
                return RolloutResult(1, f"{exc}: nothing written; `selreload rollout abort` removes it")
            what = (
                f"{got.summary()} is in progress (its driver is alive)" if got else "another push is starting a rollout"
            )
            return RolloutResult(1, f"etcd {self.key}: {what}: nothing written; see `rollout status`")
        try:
            now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            record = RolloutRecord(
                id=uuid.uuid4().hex[:8],
                file=planned.file,
                base_revision=planned.base_revision,
                digest=digest(planned.document),
                stages=stages,
                stage=0,
                canaries=(),
                bake=bake,
                timeout=stage_timeout,
                actor=actor,
                started=now,
            )
            key, rkey, ckey = self.key.encode(), rollout_key(self.key).encode(), candidate_key(self.key).encode()
            ok = self._run(
                lambda s: s.txn(
                    lambda t: [t.mod(key) == planned.base_revision, t.version(rkey) == 0],
                    lambda t: [t.put(ckey, planned.document), t.put(rkey, record.dumps())],
                )
            )
            if not ok:
                try:
                    got, _ = self._record()
                except _Spoiled as exc:
                    return RolloutResult(1, f"{exc}: nothing written; `selreload rollout abort` removes it")
                if got is not None:
                    return RolloutResult(1, f"etcd {self.key}: {got.summary()} is in progress: resume or abort it")
                return RolloutResult(3, f"etcd {self.key} moved since the plan: nothing written; push again")
            written, _ = self._record()
            if written is None:  # pragma: no cover - someone aborted in between
                return RolloutResult(4, f"etcd {self.key}: the rollout record vanished")
            self._say(f"started {written.summary()}")
            return self._drive(written, planned.document)
        finally:
            self._unlock()

    def resume(self, *, actor: str) -> RolloutResult:
        """Drive the rollout in etcd on from its stage (that stage waits and bakes again)."""
        if not self._lock():
            return RolloutResult(
                1,
                f"etcd {self.key}: the rollout is being driven now (its driver is alive; a killed driver's"
                f" lock lapses within {LOCK_TTL}s)",
            )
        try:
            try:
                record, candidate = self._record()
            except _Spoiled as exc:
                return RolloutResult(1, f"{exc}: nothing to resume; `selreload rollout abort` removes it")
            if record is None or candidate is None:
                return RolloutResult(1, f"no rollout in progress on {self.key}: nothing to resume")
            self._say(f"resuming {record.summary()} (by {actor})")
            return self._drive(record, candidate)
        finally:
            self._unlock()

    def abort(self) -> RolloutResult:
        """Revert: the canaries go back to the document at the key."""
        try:
            record, _ = self._record()
        except _Spoiled as exc:
            self._remove()
            return RolloutResult(0, f"removed {exc}; every instance runs {self.key}")
        if record is None:
            return RolloutResult(1, f"no rollout in progress on {self.key}: nothing to abort")
        self._revert(record)
        return RolloutResult(
            0, f"aborted rollout {record.id}: {', '.join(record.canaries) or 'no instance'} back on {self.key}"
        )

    # --- the driver -----------------------------------------------------------------------

    def _drive(self, record: RolloutRecord, document: bytes) -> RolloutResult:
        try:
            for index in range(record.stage, len(record.stages) - 1):
                record = self._advance(record, index)
                self._wait(record, bake=False)
                self._say(f"stage {index + 1}: {len(record.canaries)} canaries ACKed; baking {record.bake:g}s")
                self._wait(record, bake=True)
                self._say(f"stage {index + 1}: healthy after the bake")
        except _Failed as exc:
            self._revert(record)
            return RolloutResult(4, f"rollout {record.id} failed, reverted ({', '.join(record.canaries)}): {exc}")
        return self._promote(record, document)

    def _advance(self, record: RolloutRecord, index: int) -> RolloutRecord:
        live = sorted(r.instance for r in self._fleet().rows)
        want = stage_size(record.stages[index], len(live))
        canaries = list(record.canaries)
        canaries += [n for n in live if n not in canaries][: max(want - len(canaries), 0)]
        new = attrs.evolve(record, stage=index, canaries=tuple(canaries))
        if new == record and record.revision:
            return record
        rkey = rollout_key(self.key).encode()
        ok = self._run(
            lambda s: s.txn(lambda t: [t.mod(rkey) == record.revision], lambda t: [t.put(rkey, new.dumps())])
        )
        if not ok:
            raise _Failed("the rollout record changed under this driver (aborted, or another driver)")
        try:
            got, _ = self._record()
        except _Spoiled as exc:
            raise _Failed(f"the rollout record was overwritten: {exc}") from None
        if got is None:
            raise _Failed("the rollout record vanished (aborted)")
        self._say(f"stage {index + 1} of {len(record.stages)}: canaries {', '.join(got.canaries)}")
        return got

    def _wait(self, record: RolloutRecord, *, bake: bool) -> None:
        deadline = time.monotonic() + (record.bake if bake else record.timeout)
        while True:
            self._keepalive()
            rows = {r.instance: r for r in self._fleet().rows}
            problems = {name: why for name in record.canaries if (why := _problem(rows.get(name), record, bake))}
            hard = {n: w for n, w in problems.items() if not w.startswith("~")}
            if hard:
                raise _Failed("; ".join(f"{n}: {w}" for n, w in sorted(hard.items())))
            if not problems and not bake:
                return
            if time.monotonic() >= deadline:
                if bake:
                    return
                raise _Failed(
                    "; ".join(f"{n}: {w[1:]}" for n, w in sorted(problems.items())) + f" within {record.timeout:g}s"
                )
            time.sleep(POLL_S)

    def _promote(self, record: RolloutRecord, document: bytes) -> RolloutResult:
        key, rkey, ckey = self.key.encode(), rollout_key(self.key).encode(), candidate_key(self.key).encode()
        ok = self._run(
            lambda s: s.txn(
                lambda t: [t.mod(key) == record.base_revision, t.mod(rkey) == record.revision],
                lambda t: [t.put(key, document), t.delete(rkey), t.delete(ckey)],
            )
        )
        if not ok:
            self._revert(record)
            return RolloutResult(3, f"etcd {self.key} moved during rollout {record.id}: reverted, not promoted")
        return RolloutResult(0, f"promoted {record.file} to etcd {self.key} after {len(record.stages) - 1} stage(s)")

    def _revert(self, record: RolloutRecord) -> None:
        self._remove()
        self._say(f"reverted rollout {record.id}: canaries fall back to {self.key}")

    def _remove(self) -> None:
        """Delete the record and the candidate: every instance runs the key's document."""
        rkey, ckey = rollout_key(self.key).encode(), candidate_key(self.key).encode()
        self._run(lambda s: s.txn(lambda t: [t.version(rkey) > 0], lambda t: [t.delete(rkey), t.delete(ckey)]))


def _problem(row: FleetRow | None, record: RolloutRecord, bake: bool) -> str | None:
    """Why a canary is not (yet) fine; `~why` is pending (it may still come), other reasons fail."""
    if row is None:
        return "gone (its status expired)" if bake else "~no status"
    if not row.acked and row.revision is not None and row.revision > record.base_revision:
        return f"NACK ({row.outcome}): {'; '.join(row.errors) or 'no reason given'}"
    if row.applied_revision is None or row.applied_revision <= record.base_revision or not row.candidate:
        return "no longer on the candidate" if bake else "~not on the candidate yet"
    if row.healthy is False:
        return f"unhealthy: {row.health or 'no reason given'}"
    return None

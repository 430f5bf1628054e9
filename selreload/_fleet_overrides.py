"""Fleet-wide runtime overrides and commands in etcd, beside the document at KEY.

    KEY.overrides   {"seq": N, "actor": who wrote last, "entries": [{path, value, actor, ts, expires}]}
    KEY.control     {"seq": N, "action": "rollback", "target": digest, "actor": ..., "ts": ...}

The same records as a control directory's `overrides.json` and `control.json`
(`_statedir`), in etcd so that one `selreload set --for 15m` reaches every instance of a
fleet. Writers replace a record by compare-and-swap on its `mod_revision`, so two
operators never lose each other's entries.

An expiry is an absolute time in the entry (`expires`), not an etcd lease: every instance
arms a timer at the earliest one and drops the entry at that instant by itself. So it
expires though the CLI that set it is gone and though etcd is unreachable at that moment,
and every instance drops it at the same wall-clock moment (NTP-synchronised clocks: ms
apart), whereas a lease's deletion reaches each instance only when its watch delivers it,
never to one cut off from etcd, and covers a whole key, not one entry of it. Expired
entries are inert; the next write sweeps them out.

Each instance's `sr.Etcd` (through `sources._etcd_fleet`) reads both keys with the document (one transaction), puts the
overrides in force on top of the document (origin `override:<actor>@<ts>`), refuses the
entries its schema does not allow live (restart-only, secret, unknown: reported in its
status as `overrides_refused`), runs each command once, in order, and reports
`overrides_seq` and `command_seq` with its ACK/NACK, which is what `selreload set`,
`unset` and `rollback` wait for.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from . import _args
from ._etcd_client import Session, T
from ._etcd_shared import one_shot
from ._mask import show
from ._statedir import active_entries, answer_summary, iso, now_iso
from ._typing import Layer
from ._values import load_json, version_number
from ._workers import check_override_path, override_origin, override_tree

if TYPE_CHECKING:
    from ._etcd_access import Access
    from ._fleet import FleetRow, FleetStatus
    from ._schema import Schema

log = logging.getLogger("selreload.etcd")

TRIGGER_OVERRIDE = "override"
TRIGGER_EXPIRY = "override-expired"


def overrides_key(key: str) -> str:
    return f"{key}.overrides"


def control_key(key: str) -> str:
    return f"{key}.control"


def parse_record(body: bytes | None) -> dict[str, Any]:
    """An overrides or control record; `{"seq": 0, "entries": []}` for a missing or
    unreadable one (an instance never fails on it: it runs the document alone)."""
    try:
        doc = load_json(body) if body is not None else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    seq, entries = doc.get("seq"), doc.get("entries")
    return {
        **doc,
        "seq": seq if type(seq) is int and seq >= 0 else 0,  # not a bool, not below 0
        "entries": [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else [],
    }


def refusal(schema: Schema, path: str) -> str | None:
    """Why an override of `path` cannot be applied live, or None: the workers' rules
    (unknown and restart-only paths refused), and a secret is never set this way."""
    why = check_override_path(schema, path)
    if why is None and schema.policy_of(path)[1]:
        return "secret: an override cannot set it (rotate it in its source)"
    return why


def brief(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An entry without its value: what statuses and `selreload status` show."""
    return {k: entry.get(k) for k in ("path", "actor", "ts", "expires")}


# --- the CLI's side ----------------------------------------------------------------------


@attrs.frozen
class FleetAnswer:
    """What a fleet-wide action came to: every live instance's answer, or none in time."""

    action: str
    seq: int
    acked: tuple[FleetRow, ...]
    refused: tuple[tuple[FleetRow, str], ...]
    pending: tuple[FleetRow, ...]
    waited_s: float

    @property
    def total(self) -> int:
        return len(self.acked) + len(self.refused) + len(self.pending)

    def summary(self) -> str:
        return answer_summary(self, "instances")

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "seq": self.seq,
            "applied": [r.instance for r in self.acked],
            "refused": {r.instance: why for r, why in self.refused},
            "pending": [r.instance for r in self.pending],
            "waited_s": round(self.waited_s, 3),
        }


# An instance's answer to a sequence number: None (not yet), "" (applied) or why it refused.
Judge = Callable[["FleetRow"], str | None]


class FleetControl:
    """The overrides and control records of one fleet key, for `selreload set|unset|rollback`."""

    def __init__(self, where: Access, key: str, *, timeout: float = 5.0, status_prefix: str | None = None) -> None:
        self.where, self.key, self.timeout, self.status_prefix = where, key, timeout, status_prefix

    def _run(self, fn: Callable[[Session], Coroutine[Any, Any, T]]) -> T:
        return one_shot(self.where, self.key, fn, timeout=self.timeout, budget=self.timeout * 4 + 1.0)

    def read(self, which: str) -> tuple[dict[str, Any], int]:
        """The record at `which` (`overrides_key(key)` or `control_key(key)`) and its mod_revision."""
        found, _ = self._run(lambda s: s.read((which,)))
        got = found.get(which)
        return parse_record(got[0] if got else None), got[1] if got else 0

    def _swap(self, which: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Read, change, write back if nobody wrote in between (else again: bounded)."""
        raw = which.encode()

        async def op(s: Session) -> dict[str, Any]:
            for _ in range(20):
                found, _ = await s.read((which,))
                got = found.get(which)
                new = change(parse_record(got[0] if got else None))
                if await s.txn(_compare(raw, got[1] if got else 0), _put(raw, new)):
                    return new
            raise ConnectionError(f"etcd {which}: written by others 20 times in a row; try again")

        return self._run(op)

    def _reported(self, field: str) -> int:
        """The highest sequence number a live instance reports for `field`. A record deleted
        (or the key made anew) starts again at 1, under the instances' reports of higher
        numbers: a writer waiting for `reported >= seq` took an instance's answer to an
        older command for the answer to its own. The next number goes past both."""
        return max((int(getattr(row, field)) for row in self.fleet().rows), default=0)

    def write_overrides(
        self, *, set: Mapping[str, Any] | None = None, unset: Sequence[str] = (), actor: str, ttl: float | None = None
    ) -> dict[str, Any]:
        """Set and unset entries (compare-and-swap; expired ones swept); returns the record written."""
        _args.text("fleet overrides", "actor", actor)  # in every instance's log line and audit record
        floor = self._reported("overrides_seq")

        def change(doc: dict[str, Any]) -> dict[str, Any]:
            now = time.time()
            touched = {*(set or {}), *unset}
            entries = [e for e in active_entries(doc["entries"], now) if e.get("path") not in touched]
            stamp = iso(now)
            for path, value in (set or {}).items():
                expires = iso(now + ttl) if ttl is not None else None
                entries.append({"path": path, "value": value, "actor": actor, "ts": stamp, "expires": expires})
            return {"seq": max(doc["seq"], floor) + 1, "actor": actor, "entries": entries}

        return self._swap(overrides_key(self.key), change)

    def write_command(self, action: str, *, target: str, actor: str) -> int:
        _args.text(f"fleet {action}", "actor", actor)
        floor = self._reported("command_seq")

        def change(doc: dict[str, Any]) -> dict[str, Any]:
            return {
                "seq": max(doc["seq"], floor) + 1,
                "action": action,
                "target": target,
                "actor": actor,
                "ts": now_iso(),
            }

        return int(self._swap(control_key(self.key), change)["seq"])

    def check(self, schema: Schema, values: Mapping[str, Any], unset: Sequence[str] = ()) -> list[str]:
        """Why these overrides would be refused (each `path: why`), or []: a path the
        workers' rules refuse or a secret, or a value the schema refuses on top of the
        document etcd holds now and the overrides in force."""
        from . import _boundary
        from ._errors import ConfigError
        from ._structure import Structurer
        from ._yaml import parse_document

        problems = [f"{path}: {why}" for path in values if (why := refusal(schema, path))]
        if problems or not values:
            return problems
        keys = (self.key, overrides_key(self.key))
        found, _ = self._run(lambda s: s.read(keys))
        doc = found.get(self.key)
        if doc is None:
            return [f"etcd {self.key} does not exist: nothing to override"]
        now = time.time()
        record = parse_record(found[keys[1]][0] if keys[1] in found else None)
        entries = [e for e in active_entries(record["entries"], now) if e.get("path") not in {*values, *unset}]
        entries += [{"path": p, "value": v, "actor": "check", "ts": iso(now)} for p, v in values.items()]
        origins = {str(e["path"]): override_origin(e) for e in entries}
        layers = [
            parse_document(f"etcd:{self.key}@{doc[1]}", doc[0], "etcd"),
            Layer("overrides", override_tree(entries, schema.mapping_paths), "check", locate=lambda: origins),
        ]
        try:
            _boundary.structure(Structurer(schema), layers)
        except ConfigError as exc:
            return [str(issue) for issue in exc.issues]
        return []

    def fleet(self) -> FleetStatus:
        from ._fleet import fleet_status

        return fleet_status(self.where, self.key, status_prefix=self.status_prefix, timeout=self.timeout)

    def wait(self, action: str, seq: int, judge: Judge, *, timeout: float, poll: float = 0.05) -> FleetAnswer:
        """Wait until every live instance answered `seq`, or `timeout` seconds."""
        t0 = time.monotonic()
        while True:
            rows = self.fleet().rows
            answers = [(r, judge(r)) for r in rows]
            waited = time.monotonic() - t0
            pending = tuple(r for r, a in answers if a is None)
            if not pending or waited >= timeout:
                return FleetAnswer(
                    action,
                    seq,
                    acked=tuple(r for r, a in answers if a == ""),
                    refused=tuple((r, a) for r, a in answers if a),
                    pending=pending,
                    waited_s=waited,
                )
            time.sleep(poll)

    def set_overrides(
        self,
        values: Mapping[str, Any],
        *,
        unset: Sequence[str] = (),
        actor: str,
        ttl: float | None = None,
        timeout: float = 10.0,
    ) -> FleetAnswer:
        """Write, then wait for every instance; an entry any instance refuses (a NACK, a
        restart-only or secret path) is taken back out, so it does not block every later
        reload of the fleet."""
        seq = int(self.write_overrides(set=values, unset=unset, actor=actor, ttl=ttl)["seq"])
        paths = set(values)

        def judge(row: FleetRow) -> str | None:
            if row.overrides_seq < seq:
                return None
            mine = [why for why in row.overrides_refused if why.split(":", 1)[0] in paths]
            if mine:
                return "; ".join(mine)
            if not row.acked:
                return f"{row.outcome}: {'; '.join(row.errors) or 'no reason given'}"
            pending = sorted(paths & set(row.rejected))
            return f"restart-only: {', '.join(pending)}" if pending else ""

        answer = self.wait("set" if values else "unset", seq, judge, timeout=timeout)
        if answer.refused and values:
            self.write_overrides(unset=list(values), actor=actor)
        return answer

    def rollback(self, target: str, *, actor: str, timeout: float = 10.0) -> FleetAnswer:
        seq = self.write_command("rollback", target=target, actor=actor)

        def judge(row: FleetRow) -> str | None:
            if row.command_seq < seq:
                return None
            if row.command_outcome in ("applied", "unchanged"):
                return ""
            return "; ".join(row.command_errors) or str(row.command_outcome)

        return self.wait("rollback", seq, judge, timeout=timeout)


def _compare(raw: bytes, revision: int) -> Callable[[Any], list[Any]]:
    return lambda t: [t.mod(raw) == revision]


def _put(raw: bytes, doc: Mapping[str, Any]) -> Callable[[Any], list[Any]]:
    body = json.dumps(doc, sort_keys=True, default=str).encode()
    return lambda t: [t.put(raw, body)]


def resolve_target(rows: Sequence[FleetRow], target: str, *, instance: str | None = None) -> str:
    """The digest a `rollback` sends: a VERSION is per process, so it names the digest it
    has in the history of `instance` (or of every instance, when they all agree); a
    DIGEST (or a prefix of 8+ hex digits) goes as it is, each instance finding its own.

    Raises:
        ValueError: a version no instance (or `instance`) has, or that names different
            configs on different instances; an unknown `instance`.
    """
    version = version_number(target)
    if version is None:
        if len(target) < 8 or any(c not in "0123456789abcdef" for c in target.lower()):
            raise ValueError(f"{show(target, secret=False)}: expected a VERSION or a DIGEST (8 or more hex digits)")
        return target.lower()
    if instance is not None:
        chosen = [r for r in rows if r.instance == instance]
        if not chosen:
            raise ValueError(f"--instance {instance}: no live instance of that name")
        rows = chosen
    named = {r.instance: d for r in rows for v, d in r.history if v == version}
    if not named:
        where = f"instance {instance}" if instance else "any live instance"
        raise ValueError(f"version {version} is not in the history of {where}: give a digest (see fleet status --json)")
    if len(set(named.values())) > 1:
        shown = ", ".join(f"{n}: {d[:12]}" for n, d in sorted(named.items()))
        raise ValueError(
            f"version {version} names different configs on different instances ({shown}): "
            "give a digest, or --instance NAME"
        )
    return next(iter(named.values()))

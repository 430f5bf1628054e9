"""The fleet side of one `sr.Etcd` instance: overrides on top of its document, commands run once.

`Etcd` reads `KEY.overrides` and `KEY.control` with its document (one transaction) and
hands them here; `InstanceFleet` keeps what they say, composes the layer, arms the expiry
timer, runs each new command on the Reloader it is bound to, and adds what it did to the
instance's status. The records and the reasons for their shape: `selreload._fleet_overrides`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._expiry import ExpiryTimer
from .._fleet_overrides import TRIGGER_EXPIRY, TRIGGER_OVERRIDE, brief, control_key, parse_record, refusal
from .._layers import merge
from .._statedir import active_entries, next_expiry
from .._typing import Layer, NotifyFn
from .._values import one_line, recorded_text
from .._workers import is_new_command, override_origin, override_tree

if TYPE_CHECKING:
    import weakref

    from .._reloader import Reloader
    from .._schema import Schema

log = logging.getLogger("selreload.etcd")


class InstanceOverrides:
    """One instance's view of `KEY.overrides`: the entries in force, on top of a document.

    `schema` (set when the source is bound to a Reloader) decides which entries this
    instance refuses; without it every entry goes to the pipeline, whose plan rejects a
    restart-only change anyway.
    """

    def __init__(self) -> None:
        self.record: dict[str, Any] = parse_record(None)
        self.revision = 0  # the record's mod_revision as last read (0: none)
        self.schema: Schema | None = None
        self.active: tuple[Mapping[str, Any], ...] = ()
        self.refused: tuple[str, ...] = ()
        self.timer: ExpiryTimer | None = None
        self._cache: tuple[tuple[str, str], Layer] | None = None

    @property
    def seq(self) -> int:
        return int(self.record["seq"])

    def read(self, found: tuple[bytes, int] | None) -> None:
        body, revision = found if found is not None else (None, 0)
        if revision != self.revision:
            self.record, self.revision = parse_record(body), revision

    def compose(self, doc: Layer) -> Layer:
        """`doc` with the entries in force now on top (a new digest when they change,
        an expiry included); arms the timer at the next expiry."""
        entries = active_entries(self.record["entries"], time.time())
        refused: list[str] = []
        if self.schema is not None:
            kept = []
            for e in entries:
                why = refusal(self.schema, str(e["path"]))
                if why is None:
                    kept.append(e)
                else:
                    refused.append(f"{one_line(str(e['path']))}: {why} (override by {recorded_text(e, 'actor')})")
            entries = kept
        self.active, self.refused = tuple(entries), tuple(refused)
        if self.timer is not None:
            self.timer.arm(next_expiry(entries))
        if not entries:
            return doc
        canon = hashlib.sha256(json.dumps(entries, sort_keys=True, default=str).encode()).hexdigest()[:16]
        cache_key = (doc.digest, canon)
        if self._cache is not None and self._cache[0] == cache_key:
            return self._cache[1]
        roots = self.schema.mapping_paths if self.schema is not None else ()
        tree = merge([doc.tree, override_tree(entries, roots)])
        origins = {str(e["path"]): override_origin(e) for e in entries}

        def locate() -> Mapping[str, str]:
            return {**doc.locate(), **origins}

        layer = attrs.evolve(doc, tree=tree, digest=f"{doc.digest}+overrides:{canon}", locate=locate)
        self._cache = (cache_key, layer)
        return layer

    def status(self) -> dict[str, Any]:
        return {
            "overrides_seq": self.seq,
            "overrides": [brief(e) for e in self.active],
            "overrides_refused": list(self.refused),
        }

    def close(self) -> None:
        if self.timer is not None:
            self.timer.stop()
            self.timer = None


class InstanceFleet:
    """Fleet overrides and commands as one instance takes part in them."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.overrides = InstanceOverrides()
        self.control: dict[str, Any] = parse_record(None)
        self.done_seq: int | None = None  # commands up to here ran (or predate this instance)
        self.command: dict[str, Any] = {"command_seq": 0}
        self._reloader: weakref.ReferenceType[Reloader[Any]] | None = None

    def bind(self, reloader: weakref.ReferenceType[Reloader[Any]]) -> None:
        self._reloader = reloader
        bound = reloader()
        if bound is not None:
            self.overrides.schema = bound.schema

    def bound(self) -> Reloader[Any] | None:
        return self._reloader() if self._reloader is not None else None

    def read(self, overrides: tuple[bytes, int] | None, control: tuple[bytes, int] | None) -> None:
        """What one read of the document found at the two keys."""
        self.overrides.read(overrides)
        self.control = parse_record(control[0] if control else None)
        if self.done_seq is None:  # commands written before this instance are not for it
            self.done_seq = int(self.control["seq"])
            self.command = {"command_seq": self.done_seq}

    def compose(self, doc: Layer) -> Layer:
        return self.overrides.compose(doc)

    def watching(self, notify: NotifyFn) -> None:
        self.overrides.close()
        self.overrides.timer = ExpiryTimer(lambda: notify(TRIGGER_EXPIRY), name=f"selreload-etcd-expiry {self.key}")

    def on_change(
        self,
        notify: NotifyFn,
        *,
        peek: Callable[[], tuple[bytes, int] | bool | None],
        publish: Callable[[dict[str, Any]], None],
    ) -> NotifyFn:
        """What the watch calls: a reload (audited as the override's author when the
        overrides record changed: `peek()` reads it, False when there is nothing new to
        read), then the fleet command, if a new one came."""

        def changed(trigger: str) -> None:
            reloader = self.bound()
            actor = self._author(peek()) if reloader is not None else None
            if reloader is not None and actor is not None:
                reloader.reload(TRIGGER_OVERRIDE, actor)
            else:
                notify(trigger)
            if reloader is not None and self.run_command(reloader):
                publish(self.command)

        return changed

    def _author(self, found: tuple[bytes, int] | bool | None) -> str | None:
        if found is False or found is True:
            return None
        if (found[1] if found else 0) == self.overrides.revision:
            return None
        return recorded_text(parse_record(found[0] if found else None), "actor")

    def run_command(self, reloader: Reloader[Any]) -> bool:
        """Run the command read last, once (`selreload rollback --etcd`); whether it ran."""
        command, done = self.control, self.done_seq
        seq = int(command["seq"])
        if done is None:
            return False
        new = is_new_command(seq, done, where=f"etcd {control_key(self.key)}")
        self.done_seq = seq  # the record's number, always: a deleted record (0) starts again
        if not new:
            return False
        action, target = recorded_text(command, "action", "?"), recorded_text(command, "target", "?")
        actor = recorded_text(command, "actor")
        outcome, errors = "unknown", [f"unknown command {action!r}"]
        if command.get("action") == "rollback":
            try:
                result = reloader.rollback(target, actor=actor)
                outcome, errors = result.outcome.value, [str(e) for e in result.errors]
            except KeyError as exc:  # not in this instance's history: it says so
                outcome, errors = "unknown", [str(exc.args[0] if exc.args else exc)]
            except Exception as exc:  # noqa: BLE001 - reported to the issuer; this instance goes on
                outcome, errors = "failed", [f"{type(exc).__name__}: {exc}"]
        self.command = {"command_seq": seq, "command_outcome": outcome, "command_errors": errors}
        log.info("etcd %s: fleet command #%d (%s %s by %s): %s", self.key, seq, action, target, actor, outcome)
        return True

    def status(self) -> dict[str, Any]:
        """What goes into the instance's status: overrides read and refused, the last
        command and the history a VERSION is read in."""
        reloader = self.bound()
        history = reloader.history if reloader is not None else []
        return {**self.overrides.status(), **self.command, "history": [[s.version, s.digest] for s in history]}

    def close(self) -> None:
        self.overrides.close()

"""The control directory the workers of one service share on one host: files and formats.

    DIR/overrides.json        {"seq": N, "entries": [{path, value, actor, ts, expires}]}
    DIR/control.json          {"seq": N, "action": "reload"|"rollback", "target": digest, actor, ts,
                               a rollback also: "values" (its hot, non-secret leaves), "held"}
    DIR/workers/<name>.json   one worker's ACK/NACK after every attempt (and command)
    DIR/workers/<name>.lock   flock-ed by that worker while it lives
    DIR/.lock                 serialises writers of overrides.json and control.json

Every file is replaced whole (temp file + rename), so a reader (every worker's watcher)
sees the old bytes or the new ones, never half. A worker holds an exclusive `flock` on
its lock file for its whole life: the kernel releases it when the process dies, however
it dies (kill -9 included), so a reader that can take the lock knows the worker is dead.
Nothing here knows a Reloader: the CLI uses this module on its own.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import pathlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from ._result import Outcome
from ._values import load_json

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def parse_ts(text: Any) -> float | None:
    """Epoch seconds of an ISO 8601 timestamp (None for anything else)."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat(timespec="milliseconds")


def write_json(path: pathlib.Path, doc: Mapping[str, Any]) -> None:
    """Replace `path` whole with `doc`: a temp file in the same directory, then rename.

    No fsync: the directory holds live coordination state (put it on tmpfs, `/run`), not
    a record; what must survive a crash is the audit log's job.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(doc, separators=(",", ":"), default=str).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_json(path: pathlib.Path) -> dict[str, Any] | None:
    """The JSON object at `path`; None when missing or not a JSON object."""
    try:
        doc = load_json(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def safe_name(instance: str) -> str:
    """A file name for an instance name (`host:pid`, `pod-a/w1`)."""
    return "".join(c if c.isalnum() or c in "-_.:@" else "_" for c in instance) or "_"


def hold_lock(path: pathlib.Path) -> int:
    """Open and exclusively `flock` the lock file at `path`; returns its descriptor.

    Blocking on purpose: a reader probing for liveness holds it for microseconds. Retried
    when the file was replaced or removed while we waited (a reader pruning a dead
    worker of the same name), so the lock held is always the one at `path`.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            os.close(fd)
            continue
        mine = os.fstat(fd)
        if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
            return fd
        os.close(fd)


def probe_dead(path: pathlib.Path) -> bool:
    """Whether no live process holds the lock file at `path` (missing counts as dead)."""
    try:
        fd = os.open(path, os.O_RDWR | _O_CLOEXEC)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # unreadable: do not call it dead
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases the probe's lock, if it got it
    return True


@attrs.frozen
class WorkerRow:
    """One worker's last report (`workers/<name>.json`) and whether it still lives."""

    instance: str
    doc: Mapping[str, Any]
    alive: bool

    def get(self, key: str, default: Any = None) -> Any:
        return self.doc.get(key, default)

    @property
    def pid(self) -> int | None:
        pid = self.doc.get("pid")
        return pid if isinstance(pid, int) else None

    @property
    def ok(self) -> bool:
        try:
            return Outcome(str(self.doc.get("outcome"))).ok
        except ValueError:
            return False

    def seq(self, field: str) -> int:
        value = self.doc.get(field)
        return value if isinstance(value, int) else -1


@attrs.frozen
class WorkersStatus:
    """Every worker's report in one control directory.

    Attributes:
        rows: live workers, by name. A process that started a Reloader and then forked
            the workers (gunicorn --preload) is their supervisor, not a worker: its row
            is in `supervisors`.
        dead: reports whose process is gone (its lock was free).
    """

    path: str
    rows: tuple[WorkerRow, ...]
    dead: tuple[WorkerRow, ...] = ()
    supervisors: tuple[WorkerRow, ...] = ()

    def summary(self) -> str:
        digests = {r.get("digest") for r in self.rows}
        n = len(self.rows)
        if not n:
            line = f"no live worker in {self.path}"
        elif len(digests) == 1:
            digest = str(next(iter(digests)) or "?")[:12]
            line = f"{n} worker{'s' if n != 1 else ''} live, all on digest {digest}"
        else:
            line = f"{n} workers live on {len(digests)} different configs"
        failed = sum(1 for r in self.rows if not r.ok)
        pending = sum(1 for r in self.rows if r.get("rejected"))
        overridden = {e.get("path") for r in self.rows for e in r.get("overrides") or ()}
        extra = [f"{failed} refused the last change"] if failed else []
        extra += [f"{pending} with a restart pending"] if pending else []
        extra += [f"{len(overridden)} path{'s' if len(overridden) != 1 else ''} overridden"] if overridden else []
        extra += [f"{len(self.dead)} dead"] if self.dead else []
        return line + (f" ({', '.join(extra)})" if extra else "")

    def render(self) -> str:
        from ._text import table

        head = ("INSTANCE", "PID", "VERSION", "DIGEST", "OUTCOME", "REJECTED", "ERRORS", "REPORTED")
        lines: list[tuple[str, ...]] = [head]
        for r in self.rows:
            errors = [str(e) for e in r.get("errors") or ()]
            first = errors[0] + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else "") if errors else "-"
            lines.append(
                (
                    r.instance,
                    str(r.pid or "-"),
                    str(r.get("version", "-")),
                    str(r.get("digest") or "-")[:12],
                    str(r.get("outcome", "-")),
                    ", ".join(r.get("rejected") or ()) or "-",
                    first[:80],
                    str(r.get("ts", "-"))[11:23],
                )
            )
        body = table(lines) if self.rows else "no worker reports a status"
        return f"{body}\n{self.summary()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "total": len(self.rows),
            "workers": [dict(r.doc, alive=True) for r in self.rows],
            "dead": [dict(r.doc, alive=False) for r in self.dead],
            "supervisors": [dict(r.doc) for r in self.supervisors],
            "summary": self.summary(),
        }


@attrs.frozen
class Broadcast:
    """What a service-wide action came to: every live worker's answer, or none in time.

    Attributes:
        seq: the sequence number the action was written at.
        acked: workers that applied it (their outcome is an ok one).
        refused: workers that answered with a failure (invalid, rejected path, unknown digest).
        pending: live workers that had not answered when the wait ended.
    """

    action: str
    seq: int
    acked: tuple[WorkerRow, ...]
    refused: tuple[WorkerRow, ...]
    pending: tuple[WorkerRow, ...]
    waited_s: float

    @property
    def total(self) -> int:
        return len(self.acked) + len(self.refused) + len(self.pending)

    @property
    def complete(self) -> bool:
        return not self.pending and not self.refused

    def to_json(self) -> dict[str, Any]:
        def brief(r: WorkerRow) -> dict[str, Any]:
            keys = ("instance", "pid", "version", "digest", "outcome", "rejected", "errors")
            return {k: r.doc.get(k) for k in keys}

        return {
            "action": self.action,
            "seq": self.seq,
            "workers": {
                "total": self.total,
                "applied": len(self.acked),
                "refused": len(self.refused),
                "pending": len(self.pending),
            },
            "instances": [dict(brief(r), answer=a) for a, rs in self._groups() for r in rs],
            "waited_s": round(self.waited_s, 4),
        }

    def _groups(self) -> Iterator[tuple[str, tuple[WorkerRow, ...]]]:
        yield "applied", self.acked
        yield "refused", self.refused
        yield "pending", self.pending

    def summary(self) -> str:
        return answer_summary(self, "workers")


def answer_summary(answer: Any, who: str) -> str:
    """`set #4: 2 of 3 workers applied it, 1 refused`: one line for the answer of workers
    or fleet instances (`acked`, `refused`, `pending`, `total`, `waited_s`) to an action."""
    line = f"{answer.action} #{answer.seq}: {len(answer.acked)} of {answer.total} {who} applied it"
    if answer.refused:
        line += f", {len(answer.refused)} refused"
    if answer.pending:
        line += f", {len(answer.pending)} did not answer within {answer.waited_s:.1f}s"
    return line


# An answer to a sequence number: (applied?, or None while it has not answered).
Judge = Callable[[WorkerRow], bool | None]


class StateDir:
    """The files of one control directory; see the module docstring for the layout.

    Args:
        path: the directory (created when missing). Every worker of one service on one
            host gets the same path; put it on tmpfs (`/run/<service>`, an `emptyDir`
            with `medium: Memory` shared by the containers of a pod).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = pathlib.Path(path).absolute()
        self.overrides_path = self.path / "overrides.json"
        self.control_path = self.path / "control.json"
        self.workers_path = self.path / "workers"
        self._lock_path = self.path / ".lock"

    def __repr__(self) -> str:
        return f"StateDir({str(self.path)!r})"

    def ensure(self) -> None:
        self.workers_path.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        # Read-modify-write of a shared file by several processes: one at a time.
        self.ensure()
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | _O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # --- overrides ----------------------------------------------------------------------

    def read_overrides(self) -> dict[str, Any]:
        doc = read_json(self.overrides_path) or {}
        entries = doc.get("entries")
        seq = doc.get("seq")
        return {
            "seq": seq if isinstance(seq, int) else 0,
            "entries": [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else [],
        }

    def write_overrides(
        self,
        *,
        set: Mapping[str, Any] | None = None,
        unset: Sequence[str] = (),
        actor: str,
        ttl: float | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Set and unset override entries (expired ones are dropped); returns the new
        sequence number and the entries written."""
        now = time.time()
        with self._writing():
            doc = self.read_overrides()
            touched = {*(set or {}), *unset}
            entries = [
                e
                for e in doc["entries"]
                if e.get("path") not in touched and not _expired(e, now)  # expired: gone for good
            ]
            stamp = iso(now)
            for path, value in (set or {}).items():
                entry = {"path": path, "value": value, "actor": actor, "ts": stamp}
                entry["expires"] = iso(now + ttl) if ttl is not None else None
                entries.append(entry)
            seq = self._next(doc["seq"], "overrides_seq")
            write_json(self.overrides_path, {"seq": seq, "entries": entries})
        return seq, entries

    def _next(self, recorded: int, reported: str) -> int:
        """The next sequence number: past the record's and past every number a live worker
        reports. A record deleted (or its directory made anew) started again at 1, under
        the workers' reports of higher numbers: a writer waiting for `reported >= seq`
        took a worker's answer to an older command for the answer to its own."""
        return max(recorded, *(row.seq(reported) for row in self.workers().rows), 0) + 1

    # --- commands -----------------------------------------------------------------------

    def read_command(self) -> dict[str, Any]:
        doc = read_json(self.control_path) or {}
        seq = doc.get("seq")
        return dict(doc, seq=seq if type(seq) is int and seq >= 0 else 0)  # not a bool, not below 0

    def write_command(
        self, action: str, *, actor: str, target: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> int:
        """Write the next service-wide command; returns its sequence number. `extra`: what
        a worker started later needs to replay it (a rollback's values and held inputs)."""
        with self._writing():
            seq = self._next(int(self.read_command()["seq"]), "command_seq")
            doc = {**(extra or {}), "seq": seq, "action": action, "target": target, "actor": actor, "ts": now_iso()}
            write_json(self.control_path, doc)
        return seq

    # --- workers ------------------------------------------------------------------------

    def report_path(self, instance: str) -> pathlib.Path:
        return self.workers_path / f"{safe_name(instance)}.json"

    def lock_path(self, instance: str) -> pathlib.Path:
        return self.workers_path / f"{safe_name(instance)}.lock"

    def workers(self, *, prune: bool = False) -> WorkersStatus:
        """Every worker's last report; `prune` removes the files of dead ones."""
        rows: list[WorkerRow] = []
        dead: list[WorkerRow] = []
        try:
            names = sorted(p for p in self.workers_path.iterdir() if p.suffix == ".json")
        except FileNotFoundError:
            names = []
        for path in names:
            doc = read_json(path)
            if doc is None:
                continue  # removed between listing and reading
            instance = str(doc.get("instance") or path.stem)
            lock = path.with_suffix(".lock")
            if probe_dead(lock):
                dead.append(WorkerRow(instance, doc, alive=False))
                if prune:
                    with contextlib.suppress(OSError):
                        path.unlink()
                    with contextlib.suppress(OSError):
                        lock.unlink()
            else:
                rows.append(WorkerRow(instance, doc, alive=True))
        # A live process whose pid is another live row's parent forked it after starting
        # its own Reloader (gunicorn --preload): a supervisor, which serves no request.
        parents = {(r.get("host"), r.get("ppid")) for r in rows}
        supervisors = tuple(r for r in rows if (r.get("host"), r.pid) in parents)
        workers = tuple(r for r in rows if r not in supervisors)
        return WorkersStatus(str(self.path), workers, tuple(dead), supervisors)

    def wait(self, action: str, seq: int, judge: Judge, *, timeout: float, poll: float = 0.002) -> Broadcast:
        """Wait until every live worker answered `seq` (as `judge` reads its report), or
        `timeout` seconds; workers that die meanwhile drop out of the count."""
        t0 = time.monotonic()
        while True:
            status = self.workers()
            answers = [(r, judge(r)) for r in status.rows]
            waited = time.monotonic() - t0
            pending = tuple(r for r, a in answers if a is None)
            if not pending or waited >= timeout:
                return Broadcast(
                    action,
                    seq,
                    acked=tuple(r for r, a in answers if a is True),
                    refused=tuple(r for r, a in answers if a is False),
                    pending=pending,
                    waited_s=waited,
                )
            time.sleep(poll)


def _expired(entry: Mapping[str, Any], now: float) -> bool:
    expires = parse_ts(entry.get("expires"))
    return expires is not None and expires <= now


def active_entries(entries: Sequence[Mapping[str, Any]], now: float) -> list[Mapping[str, Any]]:
    """The entries in force at `now` (a valid path, not expired), the last per path."""
    by_path: dict[str, Mapping[str, Any]] = {}
    for e in entries:
        path = e.get("path")
        if isinstance(path, str) and path and not _expired(e, now):
            by_path[path] = e
    return list(by_path.values())


def next_expiry(entries: Sequence[Mapping[str, Any]]) -> float | None:
    times = [t for e in entries if (t := parse_ts(e.get("expires"))) is not None]
    return min(times) if times else None

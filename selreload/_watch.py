"""Turning the changes of one config file into reload requests: on close and rename, never modify."""

from __future__ import annotations

import errno
import logging
import math
import os
import pathlib
import select
import stat
import threading
import time
from typing import Final

from watchdog.events import FileSystemEvent

from . import _inotify
from ._aio import responsive
from ._debounce import Debounce, Fire
from ._errors import WatchError
from ._typing import NotifyFn
from ._watch_hub import _Hub, _hub, _Listener, generation

__all__ = ["MODES", "TRIGGER", "WatchError", "watch_path", "watch_paths"]

log = logging.getLogger("selreload.watch")

TRIGGER: Final = "file"
"""The trigger name of reloads a file watch asks for (audit `trigger`, span attribute)."""

MODES: Final = ("auto", "inotify", "poll")

_K8S_DATA: Final = "..data"
# Events the reload's own read causes (opened, closed_no_write) or that carry no new
# content (attrib): reacting to them would feed back into new events forever. The hub
# does not even ask for them (`_watch_hub._WANTED`); this is the second line.
_IGNORED: Final = frozenset({"opened", "closed_no_write", "attrib"})


# inotify masks -> the event kinds the watch logic speaks (watchdog's names).
_KINDS: Final = (
    (_inotify.IN_CLOSE_WRITE, "closed"),
    (_inotify.IN_MODIFY, "modified"),
    (_inotify.IN_CREATE, "created"),
    (_inotify.IN_MOVED_FROM, "moved"),
    (_inotify.IN_MOVED_TO, "moved"),
    (_inotify.IN_DELETE, "deleted"),
)

_fast_path = _inotify.available
"""Watch with inotify directly (Linux), watchdog elsewhere; tests turn it off to run the
watchdog path on Linux too."""


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


class _PathWatcher(_Listener):
    """The running watch of one file that `watch_path` returns; `stop()` ends it.

    Measured on Linux (inotify, 200 trials): a read at the first `modified` event of an in-place
    write saw a torn file in 5% of trials, so a watch fires on `closed` (close after write)
    and on a rename or symlink landing on the watched name, never on `modified`. It watches
    the file's directory, not the file: a Kubernetes ConfigMap update renames `..data_tmp`
    onto `..data` and no event names the config file; vim renames the file away and writes
    a new one. The parent directory is watched too, so a directory renamed away and
    replaced by a new one is noticed and watched again. When to notify is `Debounce`'s
    call; spurious notifications are cheap (the Reloader compares layer digests and calls
    an unchanged file UNCHANGED without parsing it).

    Two ways to get the events. On Linux (`hub` None) the watch's one thread reads its own
    inotify instance, decides and notifies: kernel -> this thread -> reload, one wake-up per
    save. watchdog's chain (its reader thread, delay queue and emitter thread, then this
    watch's thread) cost 230-400 us more per save (measured). Elsewhere, and for polling,
    a shared watchdog observer (`_watch_hub`) hands events to `on_child`/`on_dir` and this
    watch's thread notifies.
    """

    def __init__(
        self,
        path: pathlib.Path,
        notify: NotifyFn,
        hub: _Hub | None,
        *,
        quiet: float,
        polling: bool,
    ) -> None:
        self.path = path
        self.mode = hub.kind if hub is not None else "inotify"
        self._notify = notify
        self._hub = hub
        self._generation = generation()
        self._polling = polling
        self._dir = str(path.parent)
        self._name = path.name
        self._cond = threading.Condition()  # guards the three below and `_debounce`
        self._stopping = False
        self._debounce = Debounce(quiet=quiet)
        self._rearm: object | None = None  # the event that asks to watch `_dir` anew
        self._missing = False  # reported missing and not seen since; the worker's only
        self._chain: set[str] | None = None  # `_targets` with the symlinks read, until one changes
        # The inotify path's own: its instance, the watches of `_dir` and of its parent, and a
        # pipe that wakes the thread to stop. Touched only by the thread once it runs.
        self._inotify: _inotify.Inotify | None = None
        self._wd_dir = -1
        self._wd_parent = -1
        self._wake: tuple[int, int] | None = None
        self._close_on_exit = False
        run = self._run if hub is not None else self._run_inotify
        self._thread = threading.Thread(target=run, name=f"selreload-watch:{path.name}", daemon=True)

    def __repr__(self) -> str:
        state = "forked" if self.forked else "stopped" if self._stopping else "watching"
        return f"<Watcher {state} {str(self.path)!r} ({self.mode})>"

    @property
    def forked(self) -> bool:
        """Started in an ancestor of this process (before a fork()): it sees nothing here;
        make a new watch (`stop()` on this one does nothing)."""
        return self._generation != generation()

    def start(self) -> None:
        if self._hub is not None:
            self._hub.attach(self, self._dir)
        else:
            self._open_inotify()
        self._thread.start()

    def alive(self) -> bool:
        """False only when its thread died while it should be watching (a supervisor's check)."""
        return self._stopping or self._thread.is_alive()

    def stop(self) -> None:
        """Stop watching and join the thread (idempotent; a reload in progress finishes)."""
        if self.forked:
            # Its thread and observer are the parent's: touching them here would take locks
            # another thread may have held at fork() and tear down the parent's inotify watches.
            # Its own inotify descriptors only close here (the watches live on in the parent:
            # they belong to the instance, which the parent's descriptor keeps open).
            self._stopping = True
            if self._hub is None:
                self._close_inotify()
            return
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        if self._hub is not None:
            self._hub.detach(self, self._dir)
        elif self._wake is not None:
            os.write(self._wake[1], b"x")
        # Stopped from an applier or subscriber running on this very thread: it ends
        # when that call returns (and closes its descriptors then).
        if self._thread is threading.current_thread():
            self._close_on_exit = True
            return
        if self._thread.ident is not None:
            self._thread.join()
        self._close_inotify()

    # events, from the observer thread (or the inotify thread): record and wake, nothing slow

    def on_child(self, event: FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        dest = os.path.basename(os.fsdecode(event.dest_path)) if event.dest_path else ""
        self._child(event.event_type, os.path.basename(src), dest, is_dir=event.is_directory)

    def _child(self, kind: str, src: str, dest: str, *, is_dir: bool) -> None:
        """An event in the watched directory: `src` and `dest` are names in it ("" for none)."""
        if kind in _IGNORED:
            return
        if kind == "modified" and not self._polling:
            # A read at the first modify of an in-place write saw a torn file: wait for
            # the close, and hold back a trailing notification until then.
            if src == self._name:
                with self._cond:
                    self._debounce.on_write(time.monotonic())
            return
        targets = self._targets(src, dest)
        if kind in ("closed", "modified"):
            if src in targets:
                self._kick(wrote=src == self._name)
        elif kind == "moved":
            if dest in targets:
                self._kick(wrote=dest == self._name)
            elif src in targets:
                self._gone()
        elif kind == "created":
            # A new regular file is empty at creation; its close (inotify) follows. A
            # symlink or directory (`..data`) is complete when it appears.
            if src in targets and (self._polling or not _is_regular(os.path.join(self._dir, src))):
                self._kick()
        elif kind == "deleted" and src in targets:
            self._gone()

    def on_dir(self, event: FileSystemEvent, path: str) -> None:
        src = os.fsdecode(event.src_path) == path
        dest = bool(event.dest_path) and os.fsdecode(event.dest_path) == path
        self._dir_event(event.event_type, src=src, dest=dest, cause=event)

    def _dir_event(self, kind: str, *, src: bool, dest: bool, cause: object) -> None:
        """An event naming the watched directory itself (`src`: it left, `dest`: it arrived)."""
        if kind == "moved" and dest:
            # A directory renamed into place is complete: watch it, then read it.
            with self._cond:
                self._rearm = cause
                self._debounce.on_event(time.monotonic())
                self._cond.notify()
        elif kind == "created" and src:
            # mkdir in place: files may still be written; their closes reach the new
            # watch, and a file already closed before it is read after a short settle.
            with self._cond:
                self._rearm = cause
                self._debounce.on_directory_created(time.monotonic())
                self._cond.notify()
        elif kind in ("moved", "deleted") and src:
            with self._cond:
                self._rearm = cause
                self._cond.notify()
            self._gone()

    def _targets(self, *seen: str) -> set[str]:
        """Names in the directory whose change may change the file: the file itself,
        `..data` (Kubernetes), and every name its symlinks pass through. The symlinks are
        read only when the event names none of these, and only once until an event names
        one of them (no system call on the common path, nor for an editor's temporary
        files: each one is a GIL round trip)."""
        chain = self._chain
        if chain is not None and not chain.isdisjoint(seen):
            self._chain = None  # a name on the way changed: read the symlinks again next time
            return chain
        names = {self._name, _K8S_DATA}
        if not names.isdisjoint(seen):
            return names
        if chain is not None:
            return chain
        todo = [self._name]
        for _ in range(16):  # bounded: a symlink loop ends here
            if not todo:
                break
            try:
                link = os.readlink(os.path.join(self._dir, todo.pop()))
            except OSError:
                continue
            head = link.split(os.sep, 1)[0]
            if not os.path.isabs(link) and head not in names and head not in ("", ".", ".."):
                names.add(head)
                todo.append(head)
        self._chain = names
        return names

    def _kick(self, *, wrote: bool = False) -> None:
        with self._cond:
            self._debounce.on_event(time.monotonic(), wrote=wrote)
            self._cond.notify()

    def _gone(self) -> None:
        with self._cond:
            self._debounce.on_gone(time.monotonic())
            self._cond.notify()

    # the worker thread: the only one that calls notify

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    rearm, self._rearm = self._rearm, None
                    fire: Fire | None = self._debounce.due(now)
                    if rearm is not None or fire is not None:
                        break
                    deadline = self._debounce.deadline()
                    self._cond.wait(None if deadline is None else deadline - now)
            if rearm is not None and self._hub is not None:
                self._hub.rearm(self._dir, rearm)  # type: ignore[arg-type]
            if fire is not None:
                self._act(fire)

    def _act(self, fire: Fire) -> None:
        # Missing: the source decides (an optional file is an absent layer).
        present = os.path.exists(self.path) if fire.check else None
        if fire.notify or present is False:
            self._fire(present)

    def _fire(self, present: bool | None) -> None:
        if present is None and self._missing:
            present = os.path.exists(self.path)
        if present is False and not self._missing:
            self._missing = True
            log.warning(
                "config file %s is missing (deleted or renamed away): the live config stays; "
                "it reloads when the file is back",
                self.path,
            )
        elif present is True and self._missing:
            self._missing = False
            log.info("config file %s is back", self.path)
        try:
            # A shorter GIL switch interval while the reload runs (restored after): each time
            # the reload lets the GIL go (a system call, the applier's deadline handoff) it
            # gets it back within ~0.2 ms instead of up to 5 ms per busy thread. Measured
            # beside 8 CPU-bound threads: save -> applier p50 54-85 ms with it, 91-132
            # without (the minimal pipeline: 67-102).
            with responsive:
                self._notify(TRIGGER)
        except Exception:  # the watch must outlive any failure of one reload
            log.exception("config file %s: reload request failed", self.path)
        with self._cond:
            self._debounce.fired(time.monotonic())

    # the inotify path: one thread reads the kernel's events, decides and notifies

    def _open_inotify(self) -> None:
        ino = _inotify.Inotify()
        try:
            self._wd_dir = self._add_watch(ino, self._dir)
            parent = os.path.dirname(self._dir)
            if parent != self._dir:
                self._wd_parent = self._add_watch(ino, parent)
            self._wake = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        except BaseException:
            ino.close()
            raise
        self._inotify = ino

    @staticmethod
    def _add_watch(ino: _inotify.Inotify, directory: str) -> int:
        try:
            return ino.add(directory)
        except (FileNotFoundError, NotADirectoryError):
            return -1  # not there (yet): the parent's watch sees it arrive and watches it then
        except OSError as exc:
            hint = " (raise fs.inotify.max_user_watches)" if exc.errno == errno.ENOSPC else ""
            raise WatchError(exc.errno, f"cannot watch {directory}: {exc.strerror or exc}{hint}") from exc

    def _close_inotify(self) -> None:
        ino, self._inotify = self._inotify, None
        if ino is not None:
            ino.close()
        wake, self._wake = self._wake, None
        if wake is not None:
            for fd in wake:
                os.close(fd)

    def _run_inotify(self) -> None:
        ino, wake = self._inotify, self._wake
        if ino is None or wake is None:  # pragma: no cover - start() opens both first
            return
        poller = select.poll()
        poller.register(ino.fd, select.POLLIN)
        poller.register(wake[0], select.POLLIN)
        try:
            while True:
                # Every queued event is taken in before deciding: a modify of a write that
                # began during the last reload holds its notification back until the close.
                self._take(ino, ino.read())
                with self._cond:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    rearm, self._rearm = self._rearm, None
                    fire = self._debounce.due(now)
                    deadline = self._debounce.deadline()
                if rearm is not None:
                    self._rewatch(ino)
                if fire is not None:
                    self._act(fire)
                if rearm is not None or fire is not None:
                    continue  # what arrived meanwhile, then decide again
                # The one blocking call per save: the kernel wakes this thread, which reloads.
                poller.poll(None if deadline is None else max(0, math.ceil((deadline - now) * 1000)))
        finally:
            if self._close_on_exit:
                self._close_inotify()

    def _take(self, ino: _inotify.Inotify, events: list[_inotify.Event]) -> None:
        for ev in events:
            mask = ev.mask
            if mask & _inotify.IN_Q_OVERFLOW:
                self._kick()  # events were lost: read whatever is there now
                continue
            if ev.wd == self._wd_dir:
                if mask & _inotify.IN_IGNORED:
                    self._wd_dir = -1  # the directory went away; the parent's watch sees what comes
                elif ev.name:
                    for bit, kind in _KINDS:
                        if mask & bit:
                            src = "" if bit == _inotify.IN_MOVED_TO else ev.name
                            dest = ev.name if bit == _inotify.IN_MOVED_TO else ""
                            self._child(kind, src, dest, is_dir=bool(mask & _inotify.IN_ISDIR))
                            break
            if ev.wd == self._wd_parent:
                if mask & _inotify.IN_IGNORED:
                    self._wd_parent = -1
                elif ev.name == os.path.basename(self._dir):
                    if mask & _inotify.IN_MOVED_TO:
                        self._dir_event("moved", src=False, dest=True, cause=ev)
                    elif mask & _inotify.IN_CREATE:
                        self._dir_event("created", src=True, dest=False, cause=ev)
                    elif mask & (_inotify.IN_MOVED_FROM | _inotify.IN_DELETE):
                        kind = "moved" if mask & _inotify.IN_MOVED_FROM else "deleted"
                        self._dir_event(kind, src=True, dest=False, cause=ev)

    def _rewatch(self, ino: _inotify.Inotify) -> None:
        """Watch `_dir` again: the inode the old watch follows is no longer there."""
        try:
            wd = self._add_watch(ino, self._dir)
        except WatchError:
            wd = -1
        old, self._wd_dir = self._wd_dir, wd
        if old >= 0 and old != wd:
            ino.remove(old)  # the old directory, renamed away: its events are not this file's


class _DirWatcher(_PathWatcher):
    """The watch of every file in one directory (a secrets directory): any write, rename,
    symlink or deletion in it notifies, with the same close-not-modify rule per file.

    A Kubernetes Secret volume is a ConfigMap's layout (`name -> ..data/name`, `..data`
    renamed onto): the rename of `..data` is the one event of a rotation.
    """

    def __init__(self, path: pathlib.Path, notify: NotifyFn, hub: _Hub | None, *, quiet: float, polling: bool) -> None:
        super().__init__(path, notify, hub, quiet=quiet, polling=polling)
        self._dir = str(path)
        self._name = ""

    def _child(self, kind: str, src: str, dest: str, *, is_dir: bool) -> None:
        if kind in _IGNORED:
            return
        if kind == "modified" and not self._polling:
            if not is_dir:
                with self._cond:
                    self._debounce.on_write(time.monotonic())
            return
        if kind == "created" and not self._polling and _is_regular(os.path.join(self._dir, src)):
            return  # empty at creation: its close follows
        # A deleted file is a removed key: read the directory again, not a missing file.
        self._kick(wrote=kind in ("closed", "moved"))


def watch_path(
    path: pathlib.Path | str,
    notify: NotifyFn,
    *,
    mode: str = "auto",
    quiet: float = 0.0,
    poll_interval: float = 1.0,
    directory: bool = False,
) -> _PathWatcher:
    """Call `notify("file")` on a worker thread whenever the file at `path` may have changed.

    Args:
        path: the file. Its directory is watched (and that directory's parent, to notice
            the directory itself replaced); neither needs to exist yet.
        notify: called with the trigger name, one call at a time, never on the observer
            thread; may be called for a change that turns out to change nothing.
        mode: `"auto"` (inotify on Linux, the platform's native API elsewhere, polling if
            that fails), `"inotify"` (native only: fail if it cannot), or `"poll"`
            (stat the directory every `poll_interval` seconds: NFS and other filesystems
            without change notification).
        quiet: after a notification, events within this many seconds (and during the
            call) fold into one more notification; the first event never waits. 0: only
            the events during the call fold, into one more call as soon as it returns.
        poll_interval: seconds between two scans in `"poll"` mode.
        directory: `path` is a directory: notify on a change to any file in it (a
            secrets directory, a Kubernetes Secret volume).

    Returns:
        The running watch; its `stop()` joins every thread it started. In a child process
        after fork() it is dead (`forked` is true): make a new one.

    Raises:
        ValueError: an unknown `mode`.
        WatchError: the directory cannot be watched (in `"inotify"` or `"poll"` mode).
    """
    if mode not in MODES:
        raise ValueError(f"watch mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    if quiet < 0 or poll_interval <= 0:
        raise ValueError(f"quiet must be >= 0 and poll_interval > 0, got {quiet!r} and {poll_interval!r}")
    target = pathlib.Path(os.path.abspath(path))
    make = _DirWatcher if directory else _PathWatcher
    where = target if directory else target.parent
    # inotify read directly on Linux (one thread from the kernel to the reload, one inotify
    # instance per watch), else watchdog's native observer (its instances shared by every
    # watch of a directory: the fallback when fs.inotify.max_user_instances runs out);
    # polling when neither can watch.
    native = ["inotify", "native"] if _fast_path else ["native"]
    kinds = ["poll"] if mode == "poll" else [*native, "poll"] if mode == "auto" else native
    for i, kind in enumerate(kinds):
        hub = None if kind == "inotify" else _hub(kind, poll_interval)
        watcher = make(target, notify, hub, quiet=quiet, polling=kind == "poll")
        try:
            watcher.start()
        except OSError as exc:
            if i + 1 == len(kinds):
                if isinstance(exc, WatchError):
                    raise
                raise WatchError(exc.errno, f"cannot watch {where}: {exc.strerror or exc}") from exc
            if kinds[i + 1] == "poll":
                log.warning("cannot watch %s natively (%s): polling it every %gs instead", target, exc, poll_interval)
            else:
                log.info("cannot watch %s with its own inotify instance (%s): through watchdog instead", target, exc)
            continue
        return watcher
    raise AssertionError("unreachable")  # pragma: no cover


class _WatchGroup:
    """Several watches as one `Watcher`: `stop()` stops them all."""

    def __init__(self, watchers: list[_PathWatcher]) -> None:
        self._watchers = watchers

    def __repr__(self) -> str:
        return f"<Watchers {[str(w.path) for w in self._watchers]}>"

    @property
    def forked(self) -> bool:
        return any(w.forked for w in self._watchers)

    def alive(self) -> bool:
        return all(w.alive() for w in self._watchers)

    def stop(self) -> None:
        for w in self._watchers:
            w.stop()


def watch_paths(paths: list[pathlib.Path], notify: NotifyFn, *, mode: str = "auto", quiet: float = 0.0) -> _WatchGroup:
    """`watch_path` for each of `paths`, as one watch (the files an `Env` names by `*_FILE`).

    Raises:
        ValueError, WatchError: as `watch_path`; the watches started before are stopped.
    """
    started: list[_PathWatcher] = []
    try:
        for path in dict.fromkeys(paths):  # once each, in order
            started.append(watch_path(path, notify, mode=mode, quiet=quiet))
    except BaseException:
        for w in started:
            w.stop()
        raise
    return _WatchGroup(started)

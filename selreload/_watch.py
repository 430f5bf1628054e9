"""Turning file changes into reload requests: close and rename, never the first modify.

Measured on Linux (see DESIGN.md): a read at the first `modified` event of an in-place
write saw a torn file in 5% of trials, so a watch fires on `closed` (close after write) and
on a rename or symlink landing on the watched name, never on `modified`. It watches the
file's directory, not the file: a Kubernetes ConfigMap update renames `..data_tmp` onto
`..data` and no event names the config file; vim renames the file away and writes a new
one. It ignores `opened` and `closed_no_write`: the reload's own read makes those, and
reacting to them would feed back forever. The parent directory is watched too, so a
directory renamed away and replaced by a new one is noticed and watched again.

Triggers are throttled, never delayed: the first event notifies at once (leading edge);
whatever arrives while that reload runs, or within `quiet` seconds after it, becomes one
more (trailing) notification. Spurious notifications are cheap: the Reloader compares
layer digests and calls an unchanged file UNCHANGED without parsing it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import pathlib
import stat
import threading
import time
from collections.abc import Callable
from typing import Final

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

log = logging.getLogger("selreload")

TRIGGER: Final = "file"
"""The trigger name of reloads a file watch asks for (audit `trigger`, span attribute)."""

MODES: Final = ("auto", "inotify", "poll")

_K8S_DATA: Final = "..data"
# How long a removed file may stay missing before it is reported: an editor that renames
# the file away creates the new one microseconds later, and must not cause a warning.
_MISSING_GRACE: Final = 0.1
# A write in progress (a modify seen, its close not yet) holds a notification back, but
# not forever: a writer may keep the file open (an mmap, a stuck process).
_WRITE_HOLD: Final = 1.0
# Events the reload's own read causes (opened, closed_no_write) or that carry no new
# content (attrib); reacting to them would feed back into new events. The kernel is not
# even asked for them (the inotify mask follows the filter); every event not asked for is
# one less trip through watchdog's three threads before the one that matters.
_IGNORED: Final = frozenset({"opened", "closed_no_write", "attrib"})
_WANTED: Final[list[type[FileSystemEvent]]] = [
    FileClosedEvent,
    FileModifiedEvent,
    FileCreatedEvent,
    DirCreatedEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
]


class WatchError(OSError):
    """A directory could not be watched (no inotify watches left, permission denied)."""


# --- one observer per kind, shared by every watch in the process ---------------------------


Route = Callable[[str, FileSystemEvent], None]
"""How an observer hands an event of a scheduled directory to the hub."""


class _Listener:
    """What the hub calls from the observer thread; it must only record and wake."""

    def on_child(self, event: FileSystemEvent) -> None: ...

    def on_dir(self, event: FileSystemEvent, path: str) -> None: ...


class _Entry:
    __slots__ = ("holds", "last_rearm", "listeners", "watch")

    def __init__(self) -> None:
        self.holds = 0
        self.listeners: tuple[_Listener, ...] = ()
        self.watch: ObservedWatch | None = None
        self.last_rearm: FileSystemEvent | None = None


class _Handler(FileSystemEventHandler):
    def __init__(self, hub: _Hub, directory: str) -> None:
        self._hub = hub
        self._directory = directory

    def dispatch(self, event: FileSystemEvent) -> None:
        self._hub.route(self._directory, event)


class _Hub:
    """One watchdog observer shared by the watches of one kind, started with the first
    watch and stopped (threads joined) with the last.

    Lock order: the observer holds its own lock while it calls `route`, so `route` never
    takes the hub's lock: it reads `_routes`, a dict that is replaced, never mutated.
    """

    def __init__(self, kind: str, make: Callable[[Route], BaseObserver]) -> None:
        self.kind = kind
        self._make = make
        self._lock = threading.Lock()
        self._observer: BaseObserver | None = None
        self._entries: dict[str, _Entry] = {}
        self._routes: dict[str, tuple[_Listener, ...]] = {}

    def __repr__(self) -> str:
        return f"<watch hub {self.kind}: {len(self._entries)} directories>"

    def attach(self, listener: _Listener, directory: str) -> None:
        """Watch `directory` for `listener`, and its parent, to see it replaced."""
        parent = os.path.dirname(directory)
        with self._lock:
            try:
                if self._observer is None:
                    observer = self._make(self.route)
                    observer.start()
                    self._observer = observer
                self._hold(directory, listener)
                if parent != directory:
                    try:
                        self._hold(parent, None)
                    except BaseException:
                        self._release(directory, listener)
                        raise
            finally:
                stopping = self._stop_if_idle()
        if stopping is not None:
            _stop_observer(stopping)

    def detach(self, listener: _Listener, directory: str) -> None:
        parent = os.path.dirname(directory)
        with self._lock:
            self._release(directory, listener)
            if parent != directory:
                self._release(parent, None)
            stopping = self._stop_if_idle()
        if stopping is not None:
            _stop_observer(stopping)

    def rearm(self, directory: str, cause: FileSystemEvent) -> None:
        """Watch `directory` again: the inode the old watch follows is no longer there.
        Several listeners of one directory pass the same event; only the first rearms."""
        with self._lock:
            entry = self._entries.get(directory)
            if entry is None or entry.last_rearm is cause:
                return
            entry.last_rearm = cause
            self._unschedule(entry)
            with contextlib.suppress(WatchError):
                self._schedule(entry, directory)

    def route(self, directory: str, event: FileSystemEvent) -> None:
        """Called by an observer's thread for every event of a scheduled directory."""
        routes = self._routes
        paths = [os.fsdecode(event.src_path)]
        if event.dest_path:
            paths.append(os.fsdecode(event.dest_path))
        if any(os.path.dirname(p) == directory for p in paths):
            for listener in routes.get(directory, ()):
                listener.on_child(event)
        for path in paths:
            for listener in routes.get(path, ()):
                listener.on_dir(event, path)

    # the rest runs with self._lock held

    def _hold(self, directory: str, listener: _Listener | None) -> None:
        entry = self._entries.get(directory)
        if entry is None:
            entry = _Entry()
            self._schedule(entry, directory)
            self._entries[directory] = entry
        entry.holds += 1
        if listener is not None:
            entry.listeners = (*entry.listeners, listener)
            self._publish()

    def _release(self, directory: str, listener: _Listener | None) -> None:
        entry = self._entries.get(directory)
        if entry is None:
            return
        entry.holds -= 1
        if listener is not None:
            entry.listeners = tuple(x for x in entry.listeners if x is not listener)
        if entry.holds <= 0:
            del self._entries[directory]
            self._unschedule(entry)
        self._publish()

    def _publish(self) -> None:
        self._routes = {d: e.listeners for d, e in self._entries.items() if e.listeners}

    def _schedule(self, entry: _Entry, directory: str) -> None:
        if self._observer is None:
            return
        try:
            # follow_symlink: a config directory that is a symlink is watched where it points.
            entry.watch = self._observer.schedule(
                _Handler(self, directory), directory, recursive=False, event_filter=_WANTED, follow_symlink=True
            )
        except (FileNotFoundError, NotADirectoryError):
            # Not there (yet): the parent's watch sees it arrive and rearms.
            entry.watch = None
        except OSError as exc:
            hint = " (raise fs.inotify.max_user_watches)" if exc.errno == errno.ENOSPC else ""
            raise WatchError(exc.errno, f"cannot watch {directory}: {exc.strerror or exc}{hint}") from exc

    def _unschedule(self, entry: _Entry) -> None:
        watch, entry.watch = entry.watch, None
        if watch is not None and self._observer is not None:
            # KeyError: the emitter already stopped itself (its directory was deleted).
            with contextlib.suppress(KeyError):
                self._observer.unschedule(watch)

    def _stop_if_idle(self) -> BaseObserver | None:
        if self._entries:
            return None
        observer, self._observer = self._observer, None
        return observer


def _native_observer(route: Route) -> BaseObserver:
    """The platform's observer; on Linux, one that reports a rename without waiting and
    hands events straight to `route`.

    watchdog holds every IN_MOVED_FROM for up to 0.5 s to pair it with its IN_MOVED_TO, and
    its queue sleeps out that delay even when the pair arrives a microsecond later: measured
    here, 1 ConfigMap swap in 60 took 500 ms. A watch needs no pairs (a name arriving is
    a trigger, a name leaving is a check), so it asks for unpaired moves reported as they
    come ("full events": a move with an empty source or destination) and drops the delay.
    Routing from the emitter thread skips one thread hop (the observer's queue), about
    0.1 ms of the save-to-reload latency; `route` only records and wakes, so it is safe there.
    """
    try:
        from watchdog.observers.inotify import InotifyFullEmitter, InotifyObserver
    except ImportError:  # not Linux
        return Observer()

    class PromptEmitter(InotifyFullEmitter):
        def on_thread_start(self) -> None:
            super().on_thread_start()
            queue = getattr(getattr(getattr(self, "_inotify", None), "_move_event_grouper", None), "_queue", None)
            if isinstance(getattr(queue, "delay", None), int | float):
                queue.delay = 0.0  # type: ignore[union-attr]

        def queue_event(self, event: FileSystemEvent) -> None:
            if isinstance(event, tuple(_WANTED)):
                route(self.watch.path, event)

    observer = InotifyObserver(generate_full_events=True)
    if hasattr(observer, "_emitter_class"):
        observer._emitter_class = PromptEmitter
    return observer


def _stop_observer(observer: BaseObserver) -> None:
    observer.stop()
    if observer is not threading.current_thread():
        observer.join()


_HUBS: dict[tuple[str, float], _Hub] = {}
_HUBS_LOCK = threading.Lock()


def _hub(kind: str, poll_interval: float) -> _Hub:
    key = (kind, poll_interval if kind == "poll" else 0.0)
    with _HUBS_LOCK:
        hub = _HUBS.get(key)
        if hub is None:
            if kind == "poll":
                hub = _Hub(f"poll every {poll_interval:g}s", lambda route: PollingObserver(timeout=poll_interval))
            else:
                hub = _Hub("native", _native_observer)
            _HUBS[key] = hub
        return hub


# --- one watched file ----------------------------------------------------------------------


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


class _PathWatcher(_Listener):
    """The running watch of one file that `watch_path` returns; `stop()` ends it."""

    def __init__(
        self,
        path: pathlib.Path,
        notify: Callable[[str], None],
        hub: _Hub,
        *,
        quiet: float,
        polling: bool,
    ) -> None:
        self.path = path
        self.mode = hub.kind
        self._notify = notify
        self._hub = hub
        self._quiet = quiet
        self._polling = polling
        self._dir = str(path.parent)
        self._name = path.name
        self._cond = threading.Condition()
        self._stopping = False
        self._pending = False  # a notification is wanted
        self._hold_until = 0.0  # a wanted notification waits until then (trailing edge)
        self._writing_until = 0.0  # a write to the file is in progress until its close, or then
        self._due: float | None = None  # when to look whether the file is still missing
        self._due_notify = False  # at `_due`, notify if the file exists
        self._rearm: FileSystemEvent | None = None
        self._missing = False  # reported missing and not seen since
        self._thread = threading.Thread(target=self._run, name=f"selreload-watch:{path.name}", daemon=True)

    def __repr__(self) -> str:
        state = "stopped" if self._stopping else "watching"
        return f"<Watcher {state} {str(self.path)!r} ({self.mode})>"

    def start(self) -> None:
        self._hub.attach(self, self._dir)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and join the thread (idempotent; a reload in progress finishes)."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        self._hub.detach(self, self._dir)
        # Stopped from an applier or subscriber running on this very thread: it ends
        # when that call returns.
        if self._thread is not threading.current_thread() and self._thread.ident is not None:
            self._thread.join()

    # events, from the observer thread: record and wake, nothing slow

    def on_child(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind in _IGNORED:
            return
        src = os.path.basename(os.fsdecode(event.src_path))
        dest = os.path.basename(os.fsdecode(event.dest_path)) if event.dest_path else ""
        if kind == "modified" and not self._polling:
            # A read at the first modify of an in-place write saw a torn file: wait for
            # the close, and hold back a trailing notification until then.
            if src == self._name:
                with self._cond:
                    self._writing_until = time.monotonic() + _WRITE_HOLD
            return
        targets = self._targets(src, dest)
        if kind in ("closed", "modified"):
            if src in targets:
                self._kick(wrote=src == self._name)
        elif kind == "moved":
            if dest in targets:
                self._kick(wrote=dest == self._name)
            elif src in targets:
                self._check_later(notify=False)
        elif kind == "created":
            # A new regular file is empty at creation; its close (inotify) follows. A
            # symlink or directory (`..data`) is complete when it appears.
            if src in targets and (self._polling or not _is_regular(os.fsdecode(event.src_path))):
                self._kick()
        elif kind == "deleted" and src in targets:
            self._check_later(notify=False)

    def on_dir(self, event: FileSystemEvent, path: str) -> None:
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        if kind == "moved" and os.fsdecode(event.dest_path) == path:
            # A directory renamed into place is complete: watch it, then read it.
            with self._cond:
                self._rearm = event
                self._pending = True
                self._cond.notify()
        elif kind == "created" and src == path:
            # mkdir in place: files may still be written; their closes reach the new
            # watch, and a file already closed before it is read after the quiet window.
            with self._cond:
                self._rearm = event
                self._due = time.monotonic() + self._quiet
                self._due_notify = True
                self._cond.notify()
        elif (kind == "moved" and src == path) or (kind == "deleted" and src == path):
            with self._cond:
                self._rearm = event
                self._cond.notify()
            self._check_later(notify=False)

    def _targets(self, *seen: str) -> set[str]:
        """Names in the directory whose change may change the file: the file itself,
        `..data` (Kubernetes), and every name its symlinks pass through. The symlinks are
        read only when the event names neither of the first two (no system call on the
        common path: each one is a GIL round trip)."""
        names = {self._name, _K8S_DATA}
        if not names.isdisjoint(seen):
            return names
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
        return names

    def _kick(self, *, wrote: bool = False) -> None:
        with self._cond:
            if wrote:
                self._writing_until = 0.0
            self._pending = True
            self._cond.notify()

    def _check_later(self, *, notify: bool) -> None:
        with self._cond:
            self._due = time.monotonic() + _MISSING_GRACE
            self._due_notify = self._due_notify or notify
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
                    ready = max(self._hold_until, self._writing_until)
                    fire = self._pending and now >= ready
                    due = self._due is not None and now >= self._due
                    if rearm is not None or fire or due:
                        break
                    waits = [t - now for t in (ready if self._pending else None, self._due) if t is not None]
                    self._cond.wait(min(waits) if waits else None)
                if fire:
                    self._pending = False
                due_notify = False
                if due:
                    due_notify, self._due, self._due_notify = self._due_notify, None, False
            if rearm is not None:
                self._hub.rearm(self._dir, rearm)
            present: bool | None = None
            if due:
                present = os.path.exists(self.path)
                # Missing: the source decides (an optional file is an absent layer).
                fire = fire or not present or due_notify
            if fire:
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
            self._notify(TRIGGER)
        except Exception:  # the watch must outlive any failure of one reload
            log.exception("config file %s: reload request failed", self.path)
        with self._cond:
            self._hold_until = time.monotonic() + self._quiet


def watch_path(
    path: pathlib.Path | str,
    notify: Callable[[str], None],
    *,
    mode: str = "auto",
    quiet: float = 0.02,
    poll_interval: float = 1.0,
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
            call) fold into one more notification; the first event never waits.
        poll_interval: seconds between two scans in `"poll"` mode.

    Returns:
        The running watch; its `stop()` joins every thread it started.

    Raises:
        ValueError: an unknown `mode`.
        WatchError: the directory cannot be watched (in `"inotify"` or `"poll"` mode).
    """
    if mode not in MODES:
        raise ValueError(f"watch mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    if quiet < 0 or poll_interval <= 0:
        raise ValueError(f"quiet must be >= 0 and poll_interval > 0, got {quiet!r} and {poll_interval!r}")
    target = pathlib.Path(os.path.abspath(path))
    kinds = ["poll"] if mode == "poll" else ["native", "poll"] if mode == "auto" else ["native"]
    for i, kind in enumerate(kinds):
        watcher = _PathWatcher(target, notify, _hub(kind, poll_interval), quiet=quiet, polling=kind == "poll")
        try:
            watcher.start()
        except OSError as exc:
            if i + 1 == len(kinds):
                if isinstance(exc, WatchError):
                    raise
                raise WatchError(exc.errno, f"cannot watch {target.parent}: {exc.strerror or exc}") from exc
            log.warning("cannot watch %s natively (%s): polling it every %gs instead", target, exc, poll_interval)
            continue
        return watcher
    raise AssertionError("unreachable")  # pragma: no cover

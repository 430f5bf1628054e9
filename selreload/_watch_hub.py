"""One watchdog observer per kind (polling; native off Linux), shared by its watches, safe across fork()."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
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

from ._errors import WatchError

# The events a watch acts on. The others (opened, closed_no_write: the reload's own read;
# attrib: no new content) are not even asked of the kernel (the inotify mask follows the
# filter): every event not asked for is one less trip through watchdog's threads before
# the one that matters.
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

    def _forget(self) -> None:
        """In a forked child: drop the parent's observer without stopping it. Its threads do
        not exist here, and stopping it would remove the watches of the inotify instance
        the child shares with the parent (inotify_rm_watch on the inherited descriptor) and
        write to the parent's wake-up pipe. The inherited descriptors stay open (three per
        native hub): closing them takes more of watchdog's private names, and costs nothing
        to keep."""
        self._lock = threading.Lock()  # another thread may have held it at fork()
        self._observer = None
        self._entries = {}
        self._routes = {}

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


def _stop_observer(observer: BaseObserver) -> None:
    observer.stop()
    if observer is not threading.current_thread():
        observer.join()


def _native_observer(route: Route) -> BaseObserver:
    """The platform's observer; on Linux, one that reports a rename without waiting and
    hands events straight to `route` (see `_patch_observer`)."""
    try:
        from watchdog.observers.inotify import InotifyObserver
    except ImportError:  # not Linux
        return Observer()
    # Full events: a move with an empty source or destination, reported as it comes. A
    # watch needs no pairs (a name arriving is a trigger, a name leaving is a check).
    observer = InotifyObserver(generate_full_events=True)
    _patch_observer(observer, route)
    return observer


# --- the quarantine: every private name of watchdog selreload relies on is used here, and
# tests/test_watch_hub.py fails loudly when one of them moves. If one moves, the watch still
# works, only slower (a patch that finds no attribute does nothing).


def _patch_observer(observer: BaseObserver, route: Route) -> None:
    """Make an `InotifyObserver(generate_full_events=True)` build emitters that report a
    lone rename at once and call `route` from the emitter's thread.

    watchdog holds every IN_MOVED_FROM for up to 0.5 s to pair it with its IN_MOVED_TO, and
    its queue sleeps out that delay even when the pair arrives a microsecond later: measured
    here, 1 ConfigMap swap in 60 took 500 ms. Routing from the emitter thread skips one
    thread hop (the observer's queue), about 0.1 ms of the save-to-reload latency; `route`
    only records and wakes, so it is safe there.
    """
    from watchdog.observers.inotify import InotifyFullEmitter

    class PromptEmitter(InotifyFullEmitter):
        def on_thread_start(self) -> None:
            super().on_thread_start()
            # Private: `InotifyEmitter._inotify` (the InotifyWatchGroup made by
            # on_thread_start) -> `._move_event_grouper` -> `._queue` (a DelayedQueue): its
            # `delay` is the 0.5 s wait, and no public parameter sets it per observer (the
            # class attribute `InotifyMoveEventGrouper.delay` would change every user's).
            queue = getattr(getattr(getattr(self, "_inotify", None), "_move_event_grouper", None), "_queue", None)
            if isinstance(getattr(queue, "delay", None), int | float):
                queue.delay = 0.0  # type: ignore[union-attr]

        def queue_event(self, event: FileSystemEvent) -> None:
            # Public method, private contract: every event the emitter builds passes here.
            if isinstance(event, tuple(_WANTED)):
                route(self.watch.path, event)

    # Private: `BaseObserver._emitter_class`, the class `schedule()` builds emitters from.
    # InotifyObserver's constructor picks it (InotifyFullEmitter) and takes no other.
    if hasattr(observer, "_emitter_class"):
        observer._emitter_class = PromptEmitter


# --- the hubs of the process, and fork()


_HUBS: dict[tuple[str, float], _Hub] = {}
_HUBS_LOCK = threading.Lock()
_generation = 0


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


def generation() -> int:
    """How many fork()s lie between this process and the one that imported this module.

    A watch made under another generation belongs to an ancestor process: its threads do
    not exist here and it sees nothing. Record `generation()` when the watches start; when
    it differs later, call `source.watch(...)` again (the hub is empty in a child, the next
    watch starts a fresh observer); `stop()` on the old watches does nothing.
    """
    return _generation


def _after_fork_in_child() -> None:
    # Only the thread that called fork() exists in the child: the observers' threads are
    # gone, and a lock another thread held at fork() stays held forever. Start empty, with
    # new locks; the parent's hubs are emptied too, for a stale watch that still has one.
    global _HUBS, _HUBS_LOCK, _generation
    for hub in _HUBS.values():
        hub._forget()
    _HUBS = {}
    _HUBS_LOCK = threading.Lock()
    _generation += 1


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)

"""When a watched file's events become a notification: a state machine with no clock or thread."""

from __future__ import annotations

from typing import Final

import attrs

# A write in progress (a modify seen, its close not yet) holds a notification back, but
# not forever: a writer may keep the file open (an mmap, a stuck process).
WRITE_HOLD: Final = 1.0
# How long a removed file may stay missing before it is reported: an editor that renames
# the file away creates the new one microseconds later, and must not cause a warning.
MISSING_GRACE: Final = 0.1
# How long after the watched directory is made again (mkdir in place) its files are read:
# they may still be being written (their closes are events too, once it is watched).
DIR_SETTLE: Final = 0.02


@attrs.frozen
class Fire:
    """What to do now.

    Attributes:
        notify: notify, whatever the file holds.
        check: look whether the file is still there first; notify if it is missing.
    """

    notify: bool
    check: bool


class Debounce:
    """The throttle of one watch: the first event notifies at once (leading edge); whatever
    arrives while that notification runs, or within `quiet` seconds after it, becomes one
    more (trailing) notification. Throttled, never delayed: a lone event never waits.

    With `quiet=0` (the default of file sources) the reload is its own throttle: saves
    during a reload fold into one more, run as soon as it returns, so the last save of a
    storm is live at most two reloads after it lands (a quiet window of 20 ms held it back
    5.6-13 ms, measured).

    Every method takes the caller's clock reading `now` (seconds, monotonic). The methods
    named `on_*` record an event and return when `due()` has something to do (not before
    `now`), or `None`. One worker drives it: it sleeps until `deadline()` (or an event),
    calls `due(now)`, acts on the `Fire`, and calls `fired(now)` when a notification it
    made returns; it does not call `due()` while one runs.
    """

    __slots__ = (
        "_check_at",
        "_check_notify",
        "_hold_until",
        "_pending",
        "_writing_until",
        "dir_settle",
        "missing_grace",
        "quiet",
        "write_hold",
    )

    def __init__(
        self,
        *,
        quiet: float,
        write_hold: float = WRITE_HOLD,
        missing_grace: float = MISSING_GRACE,
        dir_settle: float = DIR_SETTLE,
    ) -> None:
        self.quiet = quiet
        self.dir_settle = dir_settle
        self.write_hold = write_hold
        self.missing_grace = missing_grace
        self._pending = False  # a notification is wanted
        self._hold_until = 0.0  # a wanted notification waits until then (trailing edge)
        self._writing_until = 0.0  # a write to the file is in progress until its close, or then
        self._check_at: float | None = None  # when to look whether the file is still there
        self._check_notify = False  # at `_check_at`, notify whatever is found

    def __repr__(self) -> str:
        return (
            f"<Debounce pending={self._pending} hold_until={self._hold_until:g} "
            f"writing_until={self._writing_until:g} check_at={self._check_at}>"
        )

    def on_write(self, now: float) -> float | None:
        """The file is being written (a modify): a read now could see it torn, so hold any
        notification back until its close, or `write_hold` seconds."""
        self._writing_until = now + self.write_hold
        return self._after(now)

    def on_event(self, now: float, *, wrote: bool = False) -> float | None:
        """A change that wants a notification; `wrote`: it completes a write to the file (its
        close, or a rename onto its name), which ends the hold of `on_write`."""
        if wrote:
            self._writing_until = 0.0
        self._pending = True
        return self._after(now)

    def on_gone(self, now: float) -> float | None:
        """The file (or a name on its path) left: look whether it is missing after
        `missing_grace` seconds; a later one moves that look later."""
        self._check_at = now + self.missing_grace
        return self._after(now)

    def on_directory_created(self, now: float) -> float | None:
        """The file's directory was made again in place: its files may still be written (their
        closes are events too); notify after `dir_settle` seconds whatever is there then."""
        self._check_at = now + self.dir_settle
        self._check_notify = True
        return self._after(now)

    def _after(self, now: float) -> float | None:
        deadline = self.deadline()
        return None if deadline is None else max(deadline, now)

    def deadline(self) -> float | None:
        """When `due()` has something to do next (a time already past: at once); `None`:
        nothing until the next event."""
        ready = max(self._hold_until, self._writing_until) if self._pending else None
        times = [t for t in (ready, self._check_at) if t is not None]
        return min(times) if times else None

    def due(self, now: float) -> Fire | None:
        """What to do at `now`, if anything; what it returns is done (not returned again)."""
        fire = self._pending and now >= max(self._hold_until, self._writing_until)
        check = self._check_at is not None and now >= self._check_at
        if not (fire or check):
            return None
        if fire:
            self._pending = False
        notify = False
        if check:
            notify, self._check_at, self._check_notify = self._check_notify, None, False
        return Fire(notify=fire or notify, check=check)

    def fired(self, now: float) -> None:
        """A notification returned at `now`: what arrives from then on waits `quiet` seconds."""
        self._hold_until = now + self.quiet

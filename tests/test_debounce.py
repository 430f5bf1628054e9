"""The watch throttle on a fake clock: leading edge at once, one trailing call per quiet window."""

from __future__ import annotations

import itertools

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from selreload._debounce import DIR_SETTLE, MISSING_GRACE, WRITE_HOLD, Debounce, Fire

QUIET = 0.02
NOTIFY = Fire(notify=True, check=False)


def test_a_lone_event_notifies_at_once() -> None:
    """The first event is due at its own time: the leading edge never waits."""
    d = Debounce(quiet=QUIET)
    assert d.deadline() is None
    assert d.on_event(10.0) == 10.0
    assert d.due(10.0) == NOTIFY
    assert d.due(10.0) is None  # done once
    assert d.deadline() is None


def test_an_event_within_the_quiet_window_waits_for_its_end() -> None:
    """An event right after a notification returned is due `quiet` seconds after that return."""
    d = Debounce(quiet=QUIET)
    d.on_event(0.0)
    assert d.due(0.0) == NOTIFY
    d.fired(0.005)
    assert d.on_event(0.006) == 0.005 + QUIET
    assert d.due(0.02) is None
    assert d.due(0.005 + QUIET) == NOTIFY


def test_an_event_after_the_quiet_window_notifies_at_once() -> None:
    """Once the window has passed, the next event is a leading edge again."""
    d = Debounce(quiet=QUIET)
    d.on_event(0.0)
    d.due(0.0)
    d.fired(0.001)
    assert d.on_event(1.0) == 1.0
    assert d.due(1.0) == NOTIFY


def test_a_storm_folds_into_one_leading_and_one_trailing_notification() -> None:
    """100 events 1 ms apart while notifications run: one call per quiet window, the last
    event is followed by one."""
    d = Debounce(quiet=QUIET)
    starts: list[float] = []
    now = 0.0
    for i in range(100):
        now = i * 0.001
        d.on_event(now)
        if d.due(now) is not None:
            starts.append(now)
            d.fired(now)  # an instant notify
    deadline = d.deadline()
    assert deadline is not None and deadline <= now + QUIET
    assert d.due(deadline) == NOTIFY
    starts.append(deadline)
    assert starts == [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]
    assert d.deadline() is None


def test_events_during_a_slow_notification_become_exactly_one_more() -> None:
    """Events that arrive while a notification runs fold into one call after it returns."""
    d = Debounce(quiet=QUIET)
    d.on_event(0.0)
    assert d.due(0.0) == NOTIFY
    for t in (0.1, 0.2, 0.3):  # the notify call runs from 0 to 0.5
        d.on_event(t)
    d.fired(0.5)
    assert d.deadline() == 0.5 + QUIET
    assert d.due(0.5 + QUIET) == NOTIFY
    assert d.deadline() is None


def test_a_modify_holds_back_until_the_close_after_write() -> None:
    """A modify of the file (a write in progress) holds an event back; the close of that
    write releases it at once."""
    d = Debounce(quiet=QUIET)
    assert d.on_write(0.0) is None  # a modify alone wants nothing
    assert d.on_event(0.001) == WRITE_HOLD  # e.g. `..data` changed meanwhile: wait for the write
    assert d.due(0.5) is None
    assert d.on_event(0.6, wrote=True) == 0.6  # the close of the write
    assert d.due(0.6) == NOTIFY


def test_a_write_never_closed_is_read_after_the_hold() -> None:
    """A writer that keeps the file open holds the notification for `write_hold` seconds, not forever."""
    d = Debounce(quiet=QUIET, write_hold=1.0)
    d.on_write(0.0)
    d.on_event(0.1)
    assert d.due(0.999) is None
    assert d.due(1.0) == NOTIFY


def test_a_close_that_completes_no_write_keeps_the_hold() -> None:
    """A close of another name (wrote=False) does not end the hold of the file's write."""
    d = Debounce(quiet=QUIET)
    d.on_write(0.0)
    d.on_event(0.01, wrote=False)
    assert d.due(0.01) is None
    assert d.deadline() == WRITE_HOLD


def test_a_rename_onto_the_name_ends_a_write_in_progress() -> None:
    """A file moved onto the name (wrote=True) is complete: notify at once despite an open write."""
    d = Debounce(quiet=QUIET)
    d.on_write(0.0)
    assert d.on_event(0.2, wrote=True) == 0.2
    assert d.due(0.2) == NOTIFY


def test_a_created_symlink_or_moved_directory_notifies_at_once() -> None:
    """A symlink created or a directory moved into place is an event like a close."""
    d = Debounce(quiet=QUIET)
    assert d.on_event(3.0) == 3.0
    assert d.due(3.0) == NOTIFY


def test_a_name_gone_is_checked_after_the_grace() -> None:
    """A delete or rename-away asks for a look after `missing_grace`, without notifying."""
    d = Debounce(quiet=QUIET)
    assert d.on_gone(1.0) == 1.0 + MISSING_GRACE
    assert d.due(1.0 + MISSING_GRACE / 2) is None
    assert d.due(1.0 + MISSING_GRACE) == Fire(notify=False, check=True)
    assert d.deadline() is None


def test_a_second_gone_extends_the_deadline() -> None:
    """Each removal moves the look later: a file renamed away twice in a row is looked at once."""
    d = Debounce(quiet=QUIET, missing_grace=0.1)
    d.on_gone(0.0)
    assert d.on_gone(0.05) == 0.05 + 0.1
    assert d.due(0.1) is None
    assert d.due(0.05 + 0.1) == Fire(notify=False, check=True)


def test_gone_then_back_notifies_for_the_event_and_checks() -> None:
    """A removal then a new file (vim) before the grace: one notification, and one look."""
    d = Debounce(quiet=QUIET)
    d.on_gone(0.0)
    d.on_event(0.001, wrote=True)
    assert d.due(0.001) == NOTIFY
    d.fired(0.002)
    assert d.due(MISSING_GRACE) == Fire(notify=False, check=True)


def test_a_directory_created_in_place_notifies_after_a_settle() -> None:
    """mkdir of the watched directory: one notification after `dir_settle` (even with no
    quiet window: its files may still be being written), whatever is there."""
    d = Debounce(quiet=0.0)
    assert d.on_directory_created(5.0) == 5.0 + DIR_SETTLE
    assert d.due(5.0) is None
    assert d.due(5.0 + DIR_SETTLE) == Fire(notify=True, check=True)
    assert d.deadline() is None


def test_repr_shows_the_state() -> None:
    """The repr names what is pending (debugging a stuck watch)."""
    d = Debounce(quiet=QUIET)
    d.on_event(1.0)
    assert "pending=True" in repr(d)


# --- properties: a fake clock drives the machine the way the watch's worker thread does


@attrs.frozen
class Call:
    start: float
    end: float
    fire: Fire


_KINDS = ("write", "event", "close", "gone", "mkdir")


def drive(
    events: list[tuple[float, str]], *, durations: list[float], present: bool, quiet: float = QUIET
) -> list[Call]:
    """Run `events` ((gap before, kind), in order) through a Debounce like `_PathWatcher._run`:
    wake at each deadline, notify (taking the next duration; events keep arriving meanwhile),
    then `fired`. Returns every notification made."""
    d = Debounce(quiet=quiet)
    times, t = [], 0.0
    for gap, _ in events:
        t += gap
        times.append(t)
    queue = [(at, kind) for at, (_, kind) in zip(times, events, strict=True)]
    calls: list[Call] = []
    now = 0.0

    def deliver(until: float) -> None:
        while queue and queue[0][0] <= until:
            at, kind = queue.pop(0)
            {
                "write": d.on_write,
                "event": d.on_event,
                "close": lambda at: d.on_event(at, wrote=True),
                "gone": d.on_gone,
                "mkdir": d.on_directory_created,
            }[kind](at)

    while True:
        deadline = d.deadline()
        if deadline is None and not queue:
            return calls
        if deadline is None or (queue and queue[0][0] < deadline):
            now = max(now, queue[0][0])
            deliver(now)
            continue
        now = max(now, deadline)
        fire = d.due(now)
        assert fire is not None, f"deadline {deadline} promised something at {now}: {d!r}"
        if fire.notify or (fire.check and not present):
            end = now + durations[len(calls) % len(durations)]
            calls.append(Call(now, end, fire))
            deliver(end)  # they arrive while the notification runs
            now = end
            d.fired(end)


gaps = st.sampled_from([0.0, 0.0005, 0.003, 0.01, 0.019, 0.02, 0.05, 0.2, 1.5])
content_events = st.lists(st.tuples(gaps, st.sampled_from(["write", "event", "close"])), min_size=1, max_size=60)
all_events = st.lists(st.tuples(gaps, st.sampled_from(_KINDS)), min_size=1, max_size=60)
durations = st.lists(st.sampled_from([0.0, 0.001, 0.015, 0.05]), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(events=content_events, durations=durations)
def test_at_most_one_notification_per_quiet_window(events: list[tuple[float, str]], durations: list[float]) -> None:
    """Whatever the content events (writes, closes, renames), a notification starts no sooner
    than `quiet` seconds after the previous one returned."""
    calls = drive(events, durations=durations, present=True)
    for before, after in itertools.pairwise(calls):
        assert after.start >= before.end + QUIET - 1e-9, (before, after)


@settings(max_examples=300, deadline=None)
@given(events=all_events, durations=durations, present=st.booleans())
def test_the_last_event_is_always_followed_by_a_notification(
    events: list[tuple[float, str]], durations: list[float], present: bool
) -> None:
    """The last event that wants a reload (a close, a rename, a directory made) is followed
    by a notification that starts at or after it, and in bounded time; a removal by a look."""
    calls = drive(events, durations=durations, present=present)
    t, last_wanting = 0.0, None
    for gap, kind in events:
        t += gap
        if kind in ("event", "close", "mkdir") or (kind == "gone" and not present):
            last_wanting = t
    if last_wanting is None:
        assert calls == []  # only writes in progress, or removals of a file that is there
        return
    after = [call for call in calls if call.start >= last_wanting]
    assert after, f"no notification after the event at {last_wanting}: {calls}"
    # Bounded: a write still in progress (the last event of all, at `t`) holds it at most
    # `write_hold`, then one quiet window after the notification running then.
    assert after[0].start <= t + max(WRITE_HOLD, MISSING_GRACE) + QUIET + max(durations) + 1e-9


completed_saves = st.lists(st.tuples(gaps, st.sampled_from(["event", "close"])), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(events=completed_saves, durations=durations)
def test_without_a_quiet_window_the_last_save_waits_at_most_for_the_running_notification(
    events: list[tuple[float, str]], durations: list[float]
) -> None:
    """quiet=0 (the file sources' default): saves during a notification fold into one more,
    which starts the moment that one returns; a save while none runs notifies at once. So
    the last save of any storm is live within two reloads, and calls never overlap."""
    calls = drive(events, durations=durations, present=True, quiet=0.0)
    last = sum(gap for gap, _ in events)
    running = [c for c in calls if c.start < last < c.end]
    expected = running[0].end if running else last
    after = [c for c in calls if c.start >= last]
    assert after and after[0].start == expected, (expected, calls)
    for before, nxt in itertools.pairwise(calls):
        assert nxt.start >= before.end

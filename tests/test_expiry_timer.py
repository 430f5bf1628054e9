"""The fleet overrides' expiry timer: it fires at the armed time and holds a thread only
while an expiry is armed (hundreds of instances in one process hold none when idle)."""

from __future__ import annotations

import threading
import time

from selreload._expiry import ExpiryTimer

NAME = "selreload-test-expiry"


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == NAME]


def _wait(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_no_thread_until_armed_and_none_after_it_fired() -> None:
    fired: list[float] = []
    timer = ExpiryTimer(lambda: fired.append(time.time()), name=NAME)
    timer.arm(None)
    assert _threads() == []
    when = time.time() + 0.05
    timer.arm(when)
    assert len(_threads()) == 1
    assert _wait(lambda: fired and not _threads())
    assert fired[0] >= when
    timer.arm(time.time() + 0.01)  # armed again after the thread ended: a new one fires
    assert _wait(lambda: len(fired) == 2 and not _threads())
    timer.stop()


def test_rearming_from_fire_keeps_one_thread_and_disarming_ends_it() -> None:
    fired: list[int] = []
    timer: ExpiryTimer

    def fire() -> None:
        fired.append(1)
        if len(fired) < 3:
            timer.arm(time.time() + 0.01)  # what the expiry reload's load() does

    timer = ExpiryTimer(fire, name=NAME)
    timer.arm(time.time() + 0.01)
    assert _wait(lambda: len(fired) == 3 and not _threads())
    timer.arm(time.time() + 60)
    assert len(_threads()) == 1
    timer.arm(None)
    assert _wait(lambda: not _threads())
    assert len(fired) == 3


def test_stop_ends_an_armed_timer_without_firing() -> None:
    fired: list[int] = []
    timer = ExpiryTimer(lambda: fired.append(1), name=NAME)
    timer.arm(time.time() + 60)
    timer.stop()
    assert not _threads()
    timer.arm(time.time() + 0.01)  # a stopped timer stays stopped
    assert not _threads() and fired == []


def test_an_expiry_centuries_away_keeps_the_thread_alive_and_a_nearer_one_still_fires() -> None:
    """An expiry written by hand in the year 9999 (250 billion seconds away, past what a
    lock's timeout holds) killed the thread with OverflowError; re-armed nearer, it fires."""
    fired: list[float] = []
    timer = ExpiryTimer(lambda: fired.append(time.time()), name=NAME)
    timer.arm(253402387139.0)  # 9999-12-31T23:59:59-23:59
    time.sleep(0.05)
    assert timer.alive() and len(_threads()) == 1
    timer.arm(time.time() + 0.02)
    assert _wait(lambda: fired)
    timer.stop()

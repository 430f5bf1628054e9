"""The coalescer: triggers during a reload fold into one more, and nothing leaves it stuck."""

from __future__ import annotations

import threading

import pytest

from selreload._trigger import Coalescer


def test_requests_during_a_reload_fold_into_one_more() -> None:
    """Ten requests while a reload runs give exactly one more reload, with the first
    trigger that waited."""
    ran: list[str] = []
    gate, entered = threading.Event(), threading.Event()

    def reload(trigger: str) -> None:
        ran.append(trigger)
        if len(ran) == 1:
            entered.set()
            assert gate.wait(10)

    c = Coalescer(reload, inside=lambda: False, name="t")
    drainer = threading.Thread(target=c.request, args=("file",))
    drainer.start()
    assert entered.wait(10)
    for i in range(10):
        c.request(f"signal{i}")  # returns at once: the drainer will run it
    gate.set()
    drainer.join(10)
    assert ran == ["file", "signal0"]
    assert c.pending is None


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), GeneratorExit()])
def test_a_dying_reload_does_not_leave_the_coalescer_draining(exc: BaseException) -> None:
    """`sys.exit()` inside a reload on a watcher thread propagates, and the next request
    still reloads (no draining flag left set)."""
    ran: list[str] = []

    def reload(trigger: str) -> None:
        ran.append(trigger)
        if len(ran) == 1:
            raise exc

    c = Coalescer(reload, inside=lambda: False, name="t")
    with pytest.raises(type(exc)):
        c.request("file")
    c.request("file-again")
    assert ran == ["file", "file-again"]


def test_an_exception_in_a_reload_is_logged_and_draining_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    """An ordinary exception does not escape to the watcher thread."""
    ran: list[str] = []

    def reload(trigger: str) -> None:
        ran.append(trigger)
        raise RuntimeError("boom")

    c = Coalescer(reload, inside=lambda: False, name="t")
    c.request("file")
    c.request("file")
    assert ran == ["file", "file"]
    assert "failed unexpectedly" in caplog.text


def test_a_request_from_inside_a_reload_is_deferred_until_it_ends() -> None:
    """Asked from inside a reload, the request runs after it, on the same thread."""
    inside = [False]
    ran: list[str] = []
    c = Coalescer(ran.append, inside=lambda: inside[0], name="t")
    inside[0] = True
    c.request("from-applier")
    assert ran == []
    c.run_deferred()  # still inside: nothing yet
    assert ran == []
    inside[0] = False
    c.run_deferred()
    assert ran == ["from-applier"]

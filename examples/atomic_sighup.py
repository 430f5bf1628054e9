"""SIGHUP -> parse and validate -> one-assignment swap, with requests in flight.

A slow request pins the snapshot live when it starts (`reloader.pin()`), so it finishes
on the config it began with even though a SIGHUP reload lands in the middle of it; a
request that starts after the reload sees the new config. A SIGHUP after a bad edit
changes nothing: the file is parsed and validated before anything is swapped.

    python examples/atomic_sighup.py [DIR]      # DIR defaults to a temporary directory

The process sends SIGHUP to itself here; in production it comes from
`kill -HUP <pid>`, systemd's `ExecReload`, or a Kubernetes sidecar.
"""

from __future__ import annotations

import logging
import os
import pathlib
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence

import attrs

import selreload as sr


@sr.config
class Pricing:
    currency: str = sr.hot(default="EUR", validator=attrs.validators.in_(("EUR", "USD", "GBP")))
    vat_percent: int = sr.hot(default=20, validator=[attrs.validators.ge(0), attrs.validators.le(50)])


BEFORE = "currency: EUR\nvat_percent: 20\n"
AFTER = "currency: USD\nvat_percent: 0\n"
BROKEN = "currency: USD\nvat_percent: 120\n"


@attrs.define
class Request:
    """One request: what it read when it started and when it finished."""

    name: str
    first: tuple[str, int] | None = None
    last: tuple[str, int] | None = None


def handle(reloader: sr.Reloader[Pricing], request: Request, hold: threading.Event | None = None) -> None:
    """Quote a price: read the config at the start, (slowly) work, read it again at the end."""
    with reloader.pin():
        cfg = reloader.pinned()
        request.first = (cfg.currency, cfg.vat_percent)
        if hold is not None:
            hold.wait(timeout=30)  # the slow part: a database call, an upstream API
        cfg = reloader.pinned()
        request.last = (cfg.currency, cfg.vat_percent)


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.005)
    return False


@attrs.define
class Observed:
    slow: Request
    fresh: Request
    after_broken: Request
    outcomes: list[str] = attrs.field(factory=list)
    versions: list[int] = attrs.field(factory=list)


def run(directory: pathlib.Path, *, say: Callable[[str], None] = print) -> Observed:
    """Start a slow request, SIGHUP a new config in, start a fresh request, then SIGHUP a broken one.

    Must run in the main thread: only it can install signal handlers.
    """
    path = directory / "pricing.yaml"
    path.write_text(BEFORE, encoding="utf-8")
    # watch=False: only SIGHUP triggers a reload here.
    reloader = sr.Reloader(Pricing, [sr.YamlFile(path, watch=False)], name="pricing")
    reloaded = threading.Event()
    reloader.subscribe(lambda _result: reloaded.set())
    slow, fresh, after_broken = Request("slow"), Request("fresh"), Request("after-broken")
    seen = Observed(slow, fresh, after_broken)
    with reloader:
        reloader.install_signal_handler(signal.SIGHUP)
        seen.versions.append(reloader.snapshot.version if reloader.snapshot else 0)

        hold = threading.Event()
        worker = threading.Thread(target=handle, args=(reloader, slow, hold), name="slow-request")
        worker.start()
        if not wait_for(lambda: slow.first is not None):
            raise RuntimeError("the slow request did not start")
        say(f"slow request started on {slow.first}")

        if signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, signal.SIG_IGN, None):
            # SIGHUP's default action ends the process: never send it without a handler.
            raise RuntimeError("no SIGHUP handler installed")
        path.write_text(AFTER, encoding="utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        if not reloaded.wait(timeout=15):
            raise RuntimeError(f"no reload after SIGHUP: {reloader.status()}")
        seen.outcomes.append(reloader.status()["last_outcome"])
        seen.versions.append(reloader.snapshot.version if reloader.snapshot else 0)
        say(f"SIGHUP: {seen.outcomes[-1]}, live is now {reloader.current}")

        handle(reloader, fresh)
        say(f"fresh request saw {fresh.first}")
        hold.set()
        worker.join(timeout=30)
        say(f"slow request finished on {slow.last} (it started on {slow.first})")

        path.write_text(BROKEN, encoding="utf-8")
        before = reloader.status()["last_error"]
        os.kill(os.getpid(), signal.SIGHUP)
        if not wait_for(lambda: reloader.status()["last_error"] not in (None, before)):
            raise RuntimeError(f"no reload after the second SIGHUP: {reloader.status()}")
        status = reloader.status()
        seen.outcomes.append(status["last_outcome"])
        seen.versions.append(status["version"])
        say(f"SIGHUP after a bad edit: {status['last_outcome']}: {status['last_error']}")
        handle(reloader, after_broken)
        say(f"a request now still sees {after_broken.first}")
    return seen


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        run(pathlib.Path(args[0]))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        run(pathlib.Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

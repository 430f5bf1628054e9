"""Fleet instances as real processes (`worker.py`), and bounded waits on their statuses.

`Instance` is one process running one instance, or (`count=N`) a host of N instances
on one shared etcd client, named `{name}0` .. `{name}{N-1}`."""

from __future__ import annotations

import json
import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from selreload._fleet import FleetStatus, fleet_status

T = TypeVar("T")

WORKER = pathlib.Path(__file__).with_name("worker.py")


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


class Instance:
    """One worker process; its stdout lines arrive through a reader thread."""

    def __init__(
        self,
        endpoint: str,
        key: str,
        name: str,
        lease_ttl: int,
        log_dir: pathlib.Path,
        *,
        count: int | None = None,
        inline: bool = False,
    ) -> None:
        self.name = name
        self.count = count
        self.names = [name] if count is None else [f"{name}{n}" for n in range(count)]
        self.ready_info: dict[str, Any] = {}
        self.stderr_path = log_dir / f"{name}.stderr"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        argv = [sys.executable, str(WORKER), endpoint, key, name, str(lease_ttl)]
        if count is not None:
            argv += ["--count", str(count)] + (["--inline"] if inline else [])
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
            )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def readline(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name}: no output within {timeout:g}s; {self.stderr()}") from None
        if line is None:
            raise AssertionError(f"{self.name} exited ({self.proc.poll()}); {self.stderr()}")
        return line

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-2000:]

    def wait_ready(self, timeout: float) -> None:
        line = self.readline(timeout)
        if line != "ready" and not line.startswith("ready "):
            raise AssertionError(f"{self.name} did not start: {line}")
        self.ready_info = json.loads(line[6:]) if line.startswith("ready ") else {}

    def ask(self, command: str, timeout: float = 10.0) -> Any:
        """Send one command (`cpu`, `versions`, `current`) and return its JSON answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.readline(timeout))

    def current(self, timeout: float = 10.0) -> dict[str, Any]:
        """The instance's live config, as it reads it."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("current\n")
        self.proc.stdin.flush()
        result: dict[str, Any] = json.loads(self.readline(timeout))
        return result

    def kill(self) -> None:
        """SIGKILL: no stop(), no lease revoke."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def close(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout)
        elif self.proc.stdin is not None:
            self.proc.stdin.close()
        if self.proc.stdout is not None:
            self._reader.join(timeout)
            self.proc.stdout.close()


class Fleet:
    """N instances on one key, and what `fleet_status` says about them."""

    def __init__(self, endpoint: str, key: str, names: list[str], *, lease_ttl: int, log_dir: pathlib.Path) -> None:
        self.endpoint = endpoint
        self.key = key
        self.lease_ttl = lease_ttl
        self.log_dir = log_dir
        self.instances: dict[str, Instance] = {}
        for name in names:
            self.spawn(name)

    def spawn(self, name: str) -> Instance:
        inst = Instance(self.endpoint, self.key, name, self.lease_ttl, self.log_dir)
        self.instances[name] = inst
        return inst

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for inst in self.instances.values():
            inst.wait_ready(max(deadline - time.monotonic(), 0.1))

    def status(self) -> FleetStatus:
        return fleet_status(self.endpoint, self.key)

    def rows(self) -> dict[str, Any]:
        return {r.instance: r for r in self.status().rows}

    def wait_all(self, check: Callable[[Any], bool], *, what: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until every running instance has a status row passing `check`."""
        names = set(self.instances)

        def done() -> dict[str, Any] | None:
            rows = self.rows()
            ok = names <= set(rows) and all(check(rows[n]) for n in names)
            return rows if ok else None

        return wait_for(done, timeout=timeout, what=what, interval=0.1)

    def close(self) -> None:
        for inst in self.instances.values():
            inst.close()

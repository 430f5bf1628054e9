"""`RateLimit`: a token bucket whose rate and burst a reload changes in one step."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from .._change import UNSET, Change
from .._paths import join
from .._snapshot import Snapshot
from ._common import Undo, paths_of, section_values


@attrs.frozen
class _Limits:
    rate: float
    burst: float


@attrs.frozen
class _Saved:
    """What `apply` replaced: enough to rebuild the bucket as if it never ran."""

    limits: _Limits
    tokens: float
    stamp: float
    spent: float


def _number(value: Any, path: str, *, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{path}: expected a finite number, got {value!r}")
    if value < minimum or (minimum == 0 and value == 0):
        raise ValueError(f"{path}: must be {'>' if minimum == 0 else '>='} {minimum:g}, got {value!r}")
    return float(value)


def check_limits(rate: Any, burst: Any, path: str = "rate_limit") -> _Limits:
    """The validated limits: `rate` tokens per second (> 0) and a `burst` (>= 1; `None`:
    one second's worth, at least 1).

    Raises:
        ValueError: a value that is not a finite number in range.
    """
    r = _number(rate, join(path, "rate"), minimum=0)
    b = max(1.0, r) if burst is None else _number(burst, join(path, "burst"), minimum=1)
    return _Limits(r, b)


class RateLimit:
    """A token bucket: `limit.try_acquire()` in a thread, `await limit.acquire_async()` in a
    coroutine, `limit.acquire()` to block a thread until a token comes.

    Register it at the config section holding `rate` (tokens per second) and `burst`
    (bucket size; a section without a `burst` field keeps the burst the bucket was built
    with): `reloader.on("api.rate_limit", limit)`. Both change in one step under the
    bucket's lock. Tokens already earned are kept across a change (refilled at the old
    rate up to the change), capped at the new burst, so no caller ever sees a burst beyond
    the new limit. Rollback restores the old
    limits and the tokens the bucket would hold had they never changed.

    The lock is a `threading.Lock` held for a few arithmetic operations and never across a
    wait, so threads and asyncio tasks share one bucket safely.

    Args:
        rate: tokens per second until the config is applied.
        burst: the bucket size (default: `max(1, rate)`).
        clock: a monotonic clock in seconds (tests pass their own).
        name: how metrics, spans and errors name this applier.
    """

    def __init__(
        self,
        rate: float = 1.0,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "RateLimit",
    ) -> None:
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._undo: Undo[_Saved] = Undo()
        self._limits = check_limits(rate, burst, "default")
        self._tokens = self._limits.burst
        self._stamp = clock()
        self._spent = 0.0  # every token granted, ever: what rollback subtracts

    @property
    def rate(self) -> float:
        """Tokens per second right now."""
        return self._limits.rate

    @property
    def burst(self) -> float:
        """The bucket size right now."""
        return self._limits.burst

    def __repr__(self) -> str:
        return f"<RateLimit {self.name!r} rate={self.rate:g}/s burst={self.burst:g}>"

    # --- taking tokens ------------------------------------------------------------------

    def _refill(self, now: float) -> None:
        # Caller holds the lock. A clock that goes back earns nothing rather than negative.
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(self._limits.burst, self._tokens + elapsed * self._limits.rate)
            self._stamp = now

    def _take(self, n: float) -> float:
        """0.0 when `n` tokens were taken, else the seconds until they could be."""
        with self._lock:
            self._refill(self._clock())
            if self._tokens >= n:
                self._tokens -= n
                self._spent += n
                return 0.0
            return (n - self._tokens) / self._limits.rate

    def _wait(self, n: float, deadline: float | None) -> float:
        """0.0 when `n` tokens were taken, -1.0 when `deadline` passed first, else how long
        to sleep before trying again (at most 50 ms: a reload may change the rate meanwhile)."""
        wait = self._take(n)
        if wait == 0.0:
            return 0.0
        if deadline is not None:
            left = deadline - self._clock()
            if left <= 0:
                return -1.0
            wait = min(wait, left)
        return min(wait, 0.05)

    def _check_n(self, n: float) -> None:
        if not n > 0 or n > self._limits.burst:
            burst = self._limits.burst
            raise ValueError(f"{self.name}: can take between 0 and burst ({burst:g}) tokens, asked {n!r}")

    def try_acquire(self, n: float = 1) -> bool:
        """Take `n` tokens if the bucket holds them now; never waits."""
        return self._take(n) == 0.0

    def acquire(self, n: float = 1, *, timeout: float | None = None) -> bool:
        """Block this thread until `n` tokens are taken; `False` if `timeout` passes first.

        Raises:
            ValueError: `n` is not positive or exceeds the burst (it could never be granted).
        """
        self._check_n(n)
        deadline = None if timeout is None else self._clock() + timeout
        while (wait := self._wait(n, deadline)) > 0:
            time.sleep(wait)
        return wait == 0.0

    async def acquire_async(self, n: float = 1, *, timeout: float | None = None) -> bool:
        """`acquire` for coroutines: waits with `asyncio.sleep`, never blocking the loop."""
        self._check_n(n)
        deadline = None if timeout is None else self._clock() + timeout
        while (wait := self._wait(n, deadline)) > 0:
            await asyncio.sleep(wait)
        return wait == 0.0

    def tokens(self) -> float:
        """The tokens the bucket holds now."""
        with self._lock:
            self._refill(self._clock())
            return self._tokens

    # --- applier ------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Take the new `rate` and `burst` together; raises `ValueError` (changing nothing)
        on a value that is not a finite number in range."""
        limits = self._resolve(changes, snapshot, use_old=False)
        with self._lock:
            now = self._clock()
            self._refill(now)  # earned at the old rate up to now: kept
            self._undo.push(paths_of(changes), _Saved(self._limits, self._tokens, now, self._spent))
            self._limits = limits
            # The first apply (every `old` UNSET) starts the bucket full, as the config
            # describes it; later ones keep what was earned, capped at the new burst.
            initial = all(c.old is UNSET for c in changes)
            self._tokens = limits.burst if initial else min(self._tokens, limits.burst)

    def rollback(self, changes: Sequence[Change], snapshot: Snapshot[Any]) -> None:
        """Put back the old limits, holding the tokens the old limits would have earned
        since `apply` less those granted meanwhile."""
        saved = self._undo.pop(paths_of(changes))
        if saved is None:  # never applied here: take the old values
            limits = self._resolve(changes, snapshot, use_old=True)
            with self._lock:
                self._refill(self._clock())
                self._limits = limits
                self._tokens = min(self._tokens, limits.burst)
            return
        with self._lock:
            now = self._clock()
            earned = min(saved.limits.burst, saved.tokens + max(0.0, now - saved.stamp) * saved.limits.rate)
            self._limits = saved.limits
            self._tokens = max(0.0, earned - (self._spent - saved.spent))
            self._stamp = now

    def _resolve(self, changes: Sequence[Change], snapshot: Snapshot[Any], use_old: bool) -> _Limits:
        tracked = {"rate": self._limits.rate, "burst": self._limits.burst}
        prefix, values = section_values(changes, snapshot, tracked, name=self.name, use_old=use_old)
        if values["rate"] is None:
            raise ValueError(f"{join(prefix, 'rate')}: no rate configured")
        return check_limits(values["rate"], values["burst"], prefix or "rate_limit")

"""Per-address token buckets: enrolment requests and failed authentications.

Each client address (`request.client.host`) has a bucket of `burst` tokens refilled at
`per_second`; a request that would take from an empty bucket is answered 429 with
Retry-After. Only enrolments and failures take tokens, so a client whose credential is
right is never slowed down by its own traffic. In memory, per process: `--workers N`
gives each process its own buckets (an address gets at most N times the budget).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException

_MAX_ADDRESSES = 100_000  # beyond it, full buckets are dropped (they hold nothing)


class Bucket:
    """The budget of one kind of request for every address."""

    def __init__(
        self,
        what: str,
        burst: int,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.burst = burst
        self.per_second = per_second
        self.clock = clock
        self._levels: dict[str, tuple[float, float]] = {}  # address → (tokens, at)

    def _level(self, address: str) -> float:
        tokens, at = self._levels.get(address, (float(self.burst), self.clock()))
        return min(float(self.burst), tokens + (self.clock() - at) * self.per_second)

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try again; None while it has budget left."""
        if self.burst <= 0:
            return None
        level = self._level(address)
        if level >= 1.0:
            return None
        return max(1, math.ceil((1.0 - level) / self.per_second))

    def take(self, address: str) -> None:
        """One request of this kind from `address`."""
        if self.burst <= 0:
            return
        if len(self._levels) >= _MAX_ADDRESSES:
            self._forget_full()
        self._levels[address] = (max(0.0, self._level(address) - 1.0), self.clock())

    def check(self, address: str) -> None:
        """Raise 429 (Retry-After) when `address` has no budget left."""
        wait = self.retry_after(address)
        if wait is not None:
            raise HTTPException(
                status_code=429,
                detail=f"too many {self.what} from {address}: retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    def _forget_full(self) -> None:
        full = [address for address in self._levels if self._level(address) >= self.burst]
        for address in full:
            del self._levels[address]
        if len(self._levels) >= _MAX_ADDRESSES:  # all busy: start over rather than grow
            self._levels.clear()


class Throttle:
    """The server's two budgets, built from its settings."""

    def __init__(
        self,
        enrol_burst: int,
        enrol_per_second: float,
        auth_burst: int,
        auth_per_second: float,
    ) -> None:
        self.enrolments = Bucket("enrolment requests", enrol_burst, enrol_per_second)
        self.failures = Bucket("failed authentications", auth_burst, auth_per_second)

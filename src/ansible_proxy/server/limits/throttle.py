"""Per-address token buckets: enrolment requests and failed authentications.

Each client group has a bucket of `burst` tokens refilled at `per_second`; a request
that would take from an empty bucket is answered 429 with Retry-After. A group is the
client address (`request.client.host`) cut to a network prefix: an IPv6 host is given a
whole /64, so its /64 is one client; enrolments group IPv4 by /24 too, as a host flooding
the approval queue from many addresses of its network is one client (docs/security.md).
Only enrolments and failures take tokens, so a client whose credential is right is
never slowed down by its own traffic. In memory, per process: `--workers N` gives each
process its own buckets (a group gets at most N times the budget).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException

_MAX_ADDRESSES = 100_000  # beyond it, full buckets are dropped (they hold nothing)


def client_group(address: str, ipv4_prefix: int = 32, ipv6_prefix: int = 64) -> str:
    """The network `address` belongs to, as `net/prefix` (`address` itself when it is no IP
    address); an IPv4-mapped IPv6 address counts as IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = ipv4_prefix if ip.version == 4 else ipv6_prefix
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class Bucket:
    """The budget of one kind of request for every client group."""

    def __init__(
        self,
        what: str,
        burst: int,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        ipv4_prefix: int = 32,
        ipv6_prefix: int = 64,
    ) -> None:
        self.what = what
        self.burst = burst
        self.per_second = per_second
        self.clock = clock
        self.prefixes = (ipv4_prefix, ipv6_prefix)
        self._levels: dict[str, tuple[float, float]] = {}  # group → (tokens, at)

    def group(self, address: str) -> str:
        """The bucket `address` takes from (client_group)."""
        return client_group(address, *self.prefixes)

    def _level(self, group: str) -> float:
        tokens, at = self._levels.get(group, (float(self.burst), self.clock()))
        return min(float(self.burst), tokens + (self.clock() - at) * self.per_second)

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try again; None while it has budget left."""
        if self.burst <= 0:
            return None
        level = self._level(self.group(address))
        if level >= 1.0:
            return None
        return max(1, math.ceil((1.0 - level) / self.per_second))

    def take(self, address: str) -> None:
        """One request of this kind from `address`."""
        if self.burst <= 0:
            return
        if len(self._levels) >= _MAX_ADDRESSES:
            self._forget_full()
        group = self.group(address)
        self._levels[group] = (max(0.0, self._level(group) - 1.0), self.clock())

    def check(self, address: str) -> None:
        """Raise 429 (Retry-After) when `address` has no budget left."""
        wait = self.retry_after(address)
        if wait is not None:
            raise HTTPException(
                status_code=429,
                detail=f"too many {self.what} from {self.group(address)}: retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    def _forget_full(self) -> None:
        full = [group for group in self._levels if self._level(group) >= self.burst]
        for group in full:
            del self._levels[group]
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
        self.enrolments = Bucket(
            "enrolment requests", enrol_burst, enrol_per_second, ipv4_prefix=24
        )
        self.failures = Bucket("failed authentications", auth_burst, auth_per_second)

"""A real slow link: a network namespace behind a veth pair shaped with `tc`.

The far side (SERVER_ADDRESS, inside the namespace) is where a test puts its bin-manager
(`BinManager(host=SERVER_ADDRESS, netns=link.netns)`); the near side (NEAR_ADDRESS) is
this machine's own network namespace, where the agent, supervisord and a cluster's nginx
cache run as usual. What the far side sends (a download) goes through a token bucket
(`tc qdisc … tbf`) at `rate`; `stall()` drops every packet it sends (`pfifo limit 0`),
as a link that stops dead, and `throttle()` gives it a rate again.

The two addresses are point-to-point /32 routes from 198.51.100.0/24 (a documentation
range), .250 and .251, which no other lab uses; tests using a SlowLink run one after
another (tests/conftest.py GROUPS). Torn down by PID and `ip link del` / `ip netns del`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

NEAR_ADDRESS = "198.51.100.250"
SERVER_ADDRESS = "198.51.100.251"
_numbers = itertools.count(1)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class SlowLink:
    """A namespace reached over one veth pair whose far side sends at most `rate`."""

    def __init__(self, rate: str = "16mbit") -> None:
        tag = f"{os.getpid() % 100000}{next(_numbers)}"
        self.netns = f"apsl{tag}"
        self.near, self.far = f"apsl{tag}n", f"apsl{tag}f"
        self.rate = rate
        self._made: list[str] = []

    def start(self) -> SlowLink:
        _ip("netns", "add", self.netns)
        self._made.append("netns")
        _ip("link", "add", self.near, "type", "veth", "peer", "name", self.far)
        self._made.append("veth")
        _ip("link", "set", self.far, "netns", self.netns)
        _ip("addr", "add", NEAR_ADDRESS, "peer", SERVER_ADDRESS, "dev", self.near)
        _ip("link", "set", self.near, "up")
        inside = ["netns", "exec", self.netns, "ip"]
        _ip(*inside, "addr", "add", SERVER_ADDRESS, "peer", NEAR_ADDRESS, "dev", self.far)
        _ip(*inside, "link", "set", self.far, "up")
        _ip(*inside, "link", "set", "lo", "up")
        self.throttle(self.rate)
        return self

    def _qdisc(self, *spec: str) -> None:
        _ip("netns", "exec", self.netns, "tc", "qdisc", "replace", "dev", self.far, "root", *spec)

    def throttle(self, rate: str) -> None:
        """What the far side sends goes at most at `rate` (tc's units: 16mbit = 2 MB/s)."""
        self._qdisc("tbf", "rate", rate, "burst", "32kb", "latency", "400ms")

    def stall(self) -> None:
        """Every packet the far side sends is dropped: data and ACKs; a dead link."""
        self._qdisc("pfifo", "limit", "0")

    def stop(self) -> None:
        """End what still runs in the namespace (by PID), delete the pair and the
        namespace; never raises."""
        if "netns" in self._made:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                listed = subprocess.run(
                    ["ip", "netns", "pids", self.netns], capture_output=True, text=True
                )
                for pid in listed.stdout.split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
        if "veth" in self._made:  # deleting one end deletes the pair
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("link", "del", self.near)
        if "netns" in self._made:
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", self.netns)
        self._made.clear()


@pytest.fixture
def slow_link() -> Iterator[SlowLink]:
    """A started SlowLink at 16 Mbit/s (about 1.9 MiB/s), torn down after the test."""
    link = SlowLink()
    try:
        yield link.start()
    finally:
        link.stop()

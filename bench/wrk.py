"""Debian's wrk: run it against one URL and read requests/s and the p99 latency."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

WRK = "/usr/bin/wrk"

_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.MULTILINE)
_P99 = re.compile(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),", re.MULTILINE)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)\s*$", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkResult:
    rps: float  # every answer, as wrk counts it
    p99_ms: float
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int

    @property
    def ok_rps(self) -> float:
        """Answers with a 2xx/3xx status per second: what a poller can use."""
        return (self.requests - self.non_2xx) / self.seconds if self.seconds else 0.0


def parse_wrk(output: str) -> WrkResult:
    """The figures of one `wrk --latency` run; refuses output that lacks them."""
    rps = _RPS.search(output)
    p99 = _P99.search(output)
    requests = _REQUESTS.search(output)
    if rps is None or p99 is None or requests is None:
        raise ValueError(f"wrk output without Requests/sec or a 99% latency:\n{output}")
    non_2xx = _NON_2XX.search(output)
    errors = _SOCKET_ERRORS.search(output)
    return WrkResult(
        rps=float(rps.group(1)),
        p99_ms=float(p99.group(1)) * _TO_MS[p99.group(2)],
        requests=int(requests.group(1)),
        seconds=float(requests.group(2)) * _TO_MS[requests.group(3)] / 1000,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def run_wrk(url: str, seconds: int, connections: int = 64, threads: int = 2) -> WrkResult:
    """Load `url` for `seconds` with keep-alive connections (errors are counted, not raised)."""
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse_wrk(done.stdout)

"""Issue 2: the bin-manager against nginx serving the same bytes as static files.

Polls: GET /api/v1/bins/{bin} with wrk at 64 connections (requests/s, p99).
Download: a 256 MiB release via /api/v1/download/{bin}?sha256=, curl to /dev/null.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
from math import nan as NAN

import httpx
import psutil
from tests.support.nginx import StaticNginx
from tests.support.procs import wait_until
from tests.support.server import BinManager

from bench.harness import MIB, Workspace, note, report, write_program
from bench.wrk import WrkResult, run_wrk

API = "/api/v1"
ARCH = "x86_64"
NODE = "bench-node"
POLL_BIN = "bench-poll"
BIG_BIN = "bench-big"
BIG_SIZE = 256 * MIB
WRK_SECONDS = 10
WARMUP_SECONDS = 3
DOWNLOAD_RUNS = 5


def curl_download_seconds(url: str, size: int) -> float:
    """curl's own total time for fetching `url` to /dev/null; checks the byte count."""
    argv = ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download} %{time_total}"]
    done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=120, check=True)
    got, seconds = done.stdout.split()
    if int(got) != size:
        raise RuntimeError(f"download of {url}: {got} bytes, expected {size}")
    return float(seconds)


def poll_answer(url: str) -> bytes:
    """The bytes the bin-manager answers to an agent's poll (what nginx will serve)."""
    answer = httpx.get(url, params={"nodeName": NODE, "arch": ARCH}, timeout=10)
    answer.raise_for_status()
    return answer.content


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (nginx's workers) so far."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def measured_wrk(url: str, pid: int) -> tuple[WrkResult, float]:
    """The 64-connection run, and the server's CPU milliseconds per answered request."""
    before = cpu_seconds(pid)
    result = run_wrk(url, WRK_SECONDS)
    used = cpu_seconds(pid) - before
    return result, used * 1000 / result.requests if result.requests else NAN


def poll_both(
    server_url: str, server_pid: int, nginx_url: str, nginx_pid: int
) -> tuple[list[tuple[WrkResult, float]], list[tuple[WrkResult, float]]]:
    """wrk against each side: a short warm-up at 4 connections, then the measured run."""
    note(f"wrk {WARMUP_SECONDS}s at 4 connections against each side (warm-up)")
    server = [(run_wrk(server_url, WARMUP_SECONDS, connections=4), NAN)]
    nginx = [(run_wrk(nginx_url, WARMUP_SECONDS, connections=4), NAN)]
    note(f"wrk {WRK_SECONDS}s at 64 connections against the bin-manager")
    server.append(measured_wrk(server_url, server_pid))
    note(f"wrk {WRK_SECONDS}s at 64 connections against nginx")
    nginx.append(measured_wrk(nginx_url, nginx_pid))
    return server, nginx


def download_both(server_url: str, nginx_url: str, size: int) -> tuple[float, float]:
    """Median seconds of DOWNLOAD_RUNS interleaved downloads from each side (after one each)."""
    curl_download_seconds(server_url, size)
    curl_download_seconds(nginx_url, size)
    server: list[float] = []
    nginx: list[float] = []
    for _ in range(DOWNLOAD_RUNS):
        server.append(curl_download_seconds(server_url, size))
        nginx.append(curl_download_seconds(nginx_url, size))
    return statistics.median(server), statistics.median(nginx)


def run() -> list[str]:
    """Run the issue-2 benchmark; returns the printed lines."""
    lines: list[str] = []
    with Workspace("server") as ws:
        manager = ws.track(BinManager(ws.path("bin-manager"))).start()
        nginx = ws.track(StaticNginx(ws.path("nginx")))
        small = ws.root / "poll-program"
        write_program(small, "poll")
        manager.publish(POLL_BIN, small)
        big = ws.root / "big-program"
        note("publishing a 256 MiB release")
        write_program(big, "big", BIG_SIZE)
        big_sha = manager.publish(BIG_BIN, big, timeout=120)

        query = f"nodeName={NODE}&arch={ARCH}"
        poll_path = f"{API}/bins/{POLL_BIN}"
        nginx.put(poll_path, poll_answer(f"{manager.url}{poll_path}"))
        download_path = f"{API}/download/{BIG_BIN}"
        nginx.put(download_path, big)
        nginx.start()

        poll_url = f"{manager.url}{poll_path}?{query}"
        polls = poll_both(poll_url, manager.pid, f"{nginx.url}{poll_path}", nginx.pid)
        (server_4, _), (server, server_cpu) = polls[0]
        (static_4, _), (static, static_cpu) = polls[1]
        lines.append(report("server_polls_vs_nginx", server.ok_rps / static.ok_rps))
        lines.append(report("server_polls_rps", server.ok_rps, 0))
        lines.append(report("nginx_polls_rps", static.ok_rps, 0))
        if server.requests == server.non_2xx:
            note("the bin-manager answered no request with 2xx at 64 connections (stalled)")
        lines.append(report("server_polls_p99_ms", server.p99_ms if server.ok_rps else NAN, 2))
        lines.append(report("nginx_polls_p99_ms", static.p99_ms, 2))
        lines.append(report("server_polls_failed", server.non_2xx + server.socket_errors, 0))
        lines.append(report("nginx_polls_failed", static.non_2xx + static.socket_errors, 0))
        lines.append(report("server_cpu_ms_per_poll", server_cpu, 3))
        lines.append(report("nginx_cpu_ms_per_poll", static_cpu, 3))
        lines.append(report("server_polls_rps_4conn", server_4.ok_rps, 0))
        lines.append(report("nginx_polls_rps_4conn", static_4.ok_rps, 0))
        # A server that stalled under load must answer again before the download part.
        wait_until(lambda: answers(poll_url), 90, "the bin-manager to answer again after wrk")

        note("downloading 256 MiB from each side")
        suffix = f"?sha256={big_sha}&arch={ARCH}"
        server_s, nginx_s = download_both(
            f"{manager.url}{download_path}{suffix}", f"{nginx.url}{download_path}{suffix}", BIG_SIZE
        )
        lines.append(report("server_download_vs_nginx", nginx_s / server_s))
        lines.append(report("server_download_mib_s", BIG_SIZE / MIB / server_s, 0))
        lines.append(report("nginx_download_mib_s", BIG_SIZE / MIB / nginx_s, 0))
        manager.stop()
        # nginx runs one worker per core (worker_processes auto): the same for the server.
        workers = os.cpu_count() or 1
        note(f"wrk {WRK_SECONDS}s at 64 connections against `serve --workers {workers}`")
        several = BinManager(ws.path("bin-manager-workers"), extra_args=["--workers", str(workers)])
        several = ws.track(several).start()
        several.publish(POLL_BIN, small)
        several_url = f"{several.url}{poll_path}?{query}"
        run_wrk(several_url, WARMUP_SECONDS, connections=4)
        result, cpu = measured_wrk(several_url, several.pid)
        lines.append(report("server_workers_polls_vs_nginx", result.ok_rps / static.ok_rps))
        lines.append(report("server_workers", workers, 0))
        lines.append(report("server_workers_polls_rps", result.ok_rps, 0))
        lines.append(report("server_workers_polls_p99_ms", result.p99_ms, 2))
        lines.append(
            report("server_workers_polls_failed", result.non_2xx + result.socket_errors, 0)
        )
        lines.append(report("server_workers_cpu_ms_per_poll", cpu, 3))
    return lines

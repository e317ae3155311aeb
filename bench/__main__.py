"""`python -m bench [GROUP …]`: every group (server, agent, inspector, cluster, fleet,
rollout, install, dashboard), or the named ones.

Prints `name: value` lines on stdout (progress remarks go to stderr) and keeps the
last figures in bench/results/latest.txt (not committed).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import agent_bench, dashboard_bench, install_bench, server_bench
from bench.harness import note, terminate_on_sigterm

_FIGURE = re.compile(r"^[a-z0-9_]+: \S+")


def standalone(module: str) -> Callable[[], list[str]]:
    """A group that runs `python -m bench.<module>` and keeps its `name: value` lines; its
    other lines (per-step details) are progress remarks, passed on to stderr."""

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{module}"],
            stdout=subprocess.PIPE,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        )
        lines = []
        for line in done.stdout.splitlines():
            if _FIGURE.match(line):
                lines.append(line)
                print(line, flush=True)
            else:
                print(line, file=sys.stderr, flush=True)
        if done.returncode != 0:
            raise RuntimeError(f"bench.{module} exited {done.returncode}")
        return lines

    return run


GROUPS: dict[str, Callable[[], list[str]]] = {
    "server": server_bench.run,
    "agent": agent_bench.run,
    "inspector": standalone("inspector_bench"),
    "cluster": standalone("cluster_bench"),
    "fleet": standalone("fleet_sim"),
    "rollout": standalone("fleet_rollout"),
    "install": install_bench.run,
    "dashboard": dashboard_bench.run,
}
RESULTS = Path(__file__).parent / "results" / "latest.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("groups", nargs="*", metavar="GROUP", help=f"one of {', '.join(GROUPS)}")
    args = parser.parse_args(argv)
    chosen: list[str] = args.groups or list(GROUPS)
    unknown = sorted(set(chosen) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group {', '.join(unknown)}; groups are {', '.join(GROUPS)}")
    terminate_on_sigterm()
    start = time.monotonic()
    load = " ".join(f"{n:.2f}" for n in os.getloadavg())
    lines = [
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"load average {load}, groups: {' '.join(chosen)}"
    ]
    note(lines[0][2:])
    failed = []
    for name in chosen:
        note(f"benchmark group {name}")
        try:
            lines += GROUPS[name]()
        except Exception as exc:  # one group failing must not hide the other's figures
            note(f"group {name} failed: {type(exc).__name__}: {exc}")
            lines.append(f"# group {name} failed: {type(exc).__name__}: {str(exc)[:200]}")
            failed.append(name)
    note(f"done in {time.monotonic() - start:.0f}s")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the workspaces have cleaned up already
        note("interrupted")
        sys.exit(130)

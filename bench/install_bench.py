"""What `pip install ansible-proxy` puts on a host, against the full install.

Builds this checkout's wheel, installs it into empty virtualenvs from the package index
(agent only, then with the server and cluster extras: the baseline of the same run) and
prints `agent_install_distributions`, `agent_install_mb` and their ratios to the full
install. Run: `python -m bench install` (about a minute, most of it pip).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.support.install import build_wheel, empty_venv, footprint, install

from bench.harness import note, report


def run() -> list[str]:
    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        work = Path(tmp)
        note("building the wheel")
        wheel = build_wheel(work / "dist")
        empty_venv(work / "empty")
        note("installing the agent only")
        install(work / "agent", wheel)
        note("installing the agent with the server and cluster extras")
        install(work / "full", wheel, "server,cluster")
        agent = footprint(work / "agent", work / "empty")
        full = footprint(work / "full", work / "empty")
        note(f"agent: {', '.join(agent.distributions)}")
        return [
            report("agent_install_distributions", len(agent.distributions), 0),
            report("agent_install_mb", agent.megabytes, 1),
            report("full_install_distributions", len(full.distributions), 0),
            report("full_install_mb", full.megabytes, 1),
            report("agent_install_mb_vs_full", agent.megabytes / full.megabytes),
        ]


if __name__ == "__main__":
    run()
    sys.exit(0)

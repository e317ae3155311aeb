"""`pip install ansible-proxy` on a host: the agent and the inspector, and nothing more.

A real install from the package index into an empty virtualenv, as an operator makes it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.install import build_wheel, empty_venv, footprint, install

# Issue 17's budget is 12 distributions: the agent brings 4 (no HTTP library), and 8 keeps
# room for the signing library and its dependencies while an HTTP client's seven would fail.
MAX_DISTRIBUTIONS = 8
MAX_MEGABYTES = 20.0
SERVER_AND_CLUSTER = {"fastapi", "uvicorn", "sqlalchemy", "alembic", "pydantic", "ansible-core"}


@pytest.fixture(scope="module")
def agent_install(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the agent-only virtualenv, an empty one to compare with)."""
    work = tmp_path_factory.mktemp("install")
    wheel = build_wheel(work / "dist")
    empty = work / "empty"
    empty_venv(empty)
    install(work / "agent", wheel)
    return work / "agent", empty


def test_an_agent_install_stays_within_its_budget(agent_install: tuple[Path, Path]) -> None:
    installed, empty = agent_install
    found = footprint(installed, empty)
    assert "ansible-proxy" in found.distributions
    assert not SERVER_AND_CLUSTER & set(found.distributions), found.distributions
    assert len(found.distributions) <= MAX_DISTRIBUTIONS, found.distributions
    assert found.megabytes <= MAX_MEGABYTES, found


def test_the_agent_runs_and_the_other_parts_say_what_to_install(
    agent_install: tuple[Path, Path], tmp_path: Path
) -> None:
    bin_dir = agent_install[0] / "bin"
    manifest = tmp_path / "bin-manifests.json"
    manifest.write_text(json.dumps({"binaries": []}))
    status = subprocess.run(
        [str(bin_dir / "ansible-proxy"), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "BIN_MANAGER_API": "http://127.0.0.1:9/api/v1",
            "BIN_MANIFESTS": str(manifest),
            "STORE_DIR": str(tmp_path / "store"),
        },
    )
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[1].startswith("BINARY")  # after the last tick's line

    server = subprocess.run(
        [str(bin_dir / "bin-manager"), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert server.returncode == 2
    assert server.stderr.count("\n") == 1
    assert "pip install 'ansible-proxy[server]'" in server.stderr

    cluster = subprocess.run(
        [str(bin_dir / "ansible-proxy"), "cluster", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert cluster.returncode == 2
    assert cluster.stderr.count("\n") == 1
    assert "pip install 'ansible-proxy[cluster]'" in cluster.stderr


def test_a_pipx_agent_install_says_the_pipx_command_that_adds_the_server(
    tmp_path: Path,
) -> None:
    """Installed as the operator guide does on a host (pipx, its own PIPX_HOME and
    PIPX_BIN_DIR), `bin-manager` names the pipx command for this very install, and that
    command, run as said, gives a working bin-manager."""
    wheel = build_wheel(tmp_path / "dist")
    python = empty_venv(tmp_path / "pipx-tool")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "pipx"], check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    pipx = python.parent / "pipx"  # pipx itself, from the package index
    home, links = tmp_path / "pipx-home", tmp_path / "bin"
    env = {"PATH": f"{pipx.parent}:/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    env |= {"PIPX_HOME": str(home), "PIPX_BIN_DIR": str(links)}
    subprocess.run([str(pipx), "install", str(wheel)], env=env, check=True,
                   capture_output=True, timeout=600)  # fmt: skip

    refused = subprocess.run(
        [str(links / "bin-manager"), "serve"],
        env={"PATH": "/usr/bin:/bin", "HOME": env["HOME"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    advice = f"PIPX_HOME={home} PIPX_BIN_DIR={links} pipx install --force '{wheel}[server]'"
    assert refused.stderr.rstrip("\n").endswith(f"): {advice}"), refused.stderr
    assert "pip install" not in refused.stderr

    subprocess.run(advice, shell=True, env=env, check=True, capture_output=True, timeout=900)  # noqa: S602
    done = subprocess.run(
        [str(links / "bin-manager"), "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr

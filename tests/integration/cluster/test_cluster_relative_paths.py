"""`ansible-proxy cluster run` with relative paths, typed from the directory holding them,
deploys exactly as with absolute ones (Ansible refuses a relative `src`)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from examples.cluster.build_package import build_package, program_for

from tests.support.cluster import VENV_BIN, ClusterLab, running_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterLab]:
    """One x86_64 namespace host is enough: the paths are the proxy's own."""
    with running_lab(tmp_path_factory.mktemp("cluster-relative"), ["x86_64"]) as lab:
        yield lab


def run_relative(lab: ClusterLab, manifests: Path) -> subprocess.CompletedProcess[str]:
    """What an operator types in the directory holding the inventory and manifests."""
    (lab.root / "no-config").write_text("")
    argv = [str(VENV_BIN / "ansible-proxy"), "cluster", "run"]
    argv += ["--inventory", lab.inventory.name, "--manifests", manifests.name]
    argv += ["--work-dir", lab.work_dir.name]
    env = lab.env() | {"LOCK_DIR": "locks", "ANSIBLE_PROXY_CONFIG": "no-config"}
    return subprocess.run(
        argv, cwd=lab.root, env=env, capture_output=True, text=True, check=False, timeout=280
    )


def test_relative_inventory_manifests_and_work_dir_deploy_like_absolute_ones(
    lab: ClusterLab,
) -> None:
    (host,) = lab.hosts
    v1 = lab.bin_manager.publish("hello-pkg", build_package("x86_64", "1"), "x86_64")
    manifests = lab.write_manifests()
    assert manifests.parent == lab.inventory.parent == lab.work_dir.parent == lab.root

    result = run_relative(lab, manifests)
    log = (lab.root / "cluster.log").read_text()[-3000:]
    assert result.returncode == 0, result.stderr + log
    assert "must be an absolute path" not in log
    assert host.get() == "hello x86_64 1\n"
    assert (host.app_dir / "bin" / "hello").read_text() == program_for("x86_64", "1")
    assert (lab.root / "locks").is_dir()
    runs = sorted((lab.work_dir / "runs" / "hello").iterdir())
    assert len(runs) == 1

    # the same state, read through absolute paths: nothing left to do
    again = lab.run(manifests)
    assert again.returncode == 0, again.stderr
    assert sorted((lab.work_dir / "runs" / "hello").iterdir()) == runs
    assert v1[:12] in lab.run_status()

    # and a new release deploys through relative paths again
    lab.bin_manager.publish("hello-pkg", build_package("x86_64", "2"), "x86_64")
    result = run_relative(lab, manifests)
    assert result.returncode == 0, result.stderr + (lab.root / "cluster.log").read_text()[-3000:]
    assert host.get() == "hello x86_64 2\n"

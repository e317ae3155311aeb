"""Cluster mode with container images for static files (examples/cluster/containers/): two
namespace hosts, each with its own podman store, reached over real SSH by real
ansible-playbook with the containers.podman collection.

The tests run in order on one lab: v1's image loaded and run on both hosts, then v2, then
a v3 whose container exits at start: its health check fails and v2's rollback.yml makes
v2's image current again. No container is left afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.cluster_containers import (
    SERVICE,
    ContainerCluster,
    listening_web_script,
    running_container_cluster,
)
from tests.support.containers import failing_script
from tests.support.procs import wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerCluster]:
    with running_container_cluster(tmp_path_factory.mktemp("containers"), hosts=2) as cluster:
        yield cluster


def tail(cluster: ContainerCluster) -> str:
    """The end of the proxy's log, for assertion messages."""
    return (cluster.lab.root / "cluster.log").read_text()[-3000:]


def state(cluster: ContainerCluster) -> dict[str, Any]:
    data = json.loads((cluster.lab.work_dir / "cluster-state.json").read_text())
    web: dict[str, Any] = data["services"][SERVICE]
    return web


def runs(cluster: ContainerCluster) -> list[str]:
    return sorted(p.name for p in (cluster.lab.work_dir / "runs" / SERVICE).iterdir())


def answers(cluster: ContainerCluster) -> dict[str, str]:
    """What each host's service answers at ADDRESS:18080/version (the health check's port)."""
    return {host.name: host.get("/version") for host in cluster.lab.hosts}


def test_an_image_archive_is_loaded_and_run_on_every_host(cluster: ContainerCluster) -> None:
    v1 = cluster.publish("v1", listening_web_script("web v1"))
    result = cluster.run(cluster.write_manifests())
    assert result.returncode == 0, tail(cluster)
    assert answers(cluster) == {"h1": "web v1\n", "h2": "web v1\n"}
    for host in cluster.lab.hosts:
        assert state(cluster)["hosts"][host.name]["history"] == {v1: "ok"}
        # each host's own store holds the release, tagged current, and runs it
        assert cluster.tag_id(host.name, "current") == cluster.tag_id(host.name, f"sha256-{v1}")
        assert (host.app_dir / "images" / f"{v1}.tar").is_file()
    assert cluster.containers() == {"h1": ["web"], "h2": ["web"]}
    assert len(runs(cluster)) == 1

    again = cluster.run(cluster.write_manifests())
    assert again.returncode == 0, tail(cluster)
    assert len(runs(cluster)) == 1  # idempotent: nothing to do, no playbook run


def test_the_next_image_replaces_the_running_container(cluster: ContainerCluster) -> None:
    v1 = state(cluster)["hosts"]["h1"]["version"]
    v2 = cluster.publish("v2", listening_web_script("web v2"))
    result = cluster.run(cluster.write_manifests())
    assert result.returncode == 0, tail(cluster)
    assert answers(cluster) == {"h1": "web v2\n", "h2": "web v2\n"}
    for host in cluster.lab.hosts:
        assert state(cluster)["hosts"][host.name]["upgradePath"] == {v2: v1}
        assert cluster.tag_id(host.name, "current") == cluster.tag_id(host.name, f"sha256-{v2}")
    assert cluster.containers() == {"h1": ["web"], "h2": ["web"]}  # replaced, not added


def test_an_image_that_exits_at_start_fails_its_health_check_and_is_rolled_back(
    cluster: ContainerCluster,
) -> None:
    v2 = state(cluster)["hosts"]["h1"]["version"]
    v3 = cluster.publish("v3", failing_script("bad release"))
    result = cluster.run(cluster.write_manifests(health_timeout=5))
    assert result.returncode == 1, tail(cluster)
    log = (cluster.lab.root / "cluster.log").read_text()
    for name in ("h1", "h2"):
        assert f"{name}: health check failed after deploy" in log
        assert f"{name}: rolled back to {v2[:12]}" in log
    # v2's rollback.yml re-tagged v2's image as current and restarted the program on it
    wait_until(lambda: answers(cluster) == {"h1": "web v2\n", "h2": "web v2\n"}, 30, "web v2 back")
    for host in cluster.lab.hosts:
        hosted = state(cluster)["hosts"][host.name]
        assert (hosted["version"], hosted["history"][v3]) == (v2, "err")
        assert cluster.tag_id(host.name, "current") == cluster.tag_id(host.name, f"sha256-{v2}")
    assert state(cluster)["history"][v3] == "err"
    status = cluster.lab.run_status()
    for name in ("h1", "h2"):
        assert f"{SERVICE}      {name}    {v2[:12]}  {v3[:12]} err" in status, status
    progress = cluster.lab.bin_manager.admin_get("/bins/web-pkg/progress").json()["data"]
    assert "failed" in json.dumps(progress)

    count = len(runs(cluster))
    again = cluster.run(cluster.write_manifests())
    assert again.returncode == 0, tail(cluster)  # the known-bad image is not retried
    assert len(runs(cluster)) == count

    cluster.stop_programs()
    assert cluster.containers() == {"h1": [], "h2": []}  # `podman run --rm`: none left

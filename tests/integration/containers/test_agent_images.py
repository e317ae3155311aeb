"""The agent and the inspector keep an image entry at the published release, for real:
podman, supervisord running `podman run`, the bin-manager, the agent's console script.

Releases are OCI archives (`podman save`) published like any file, or a registry digest
published with `bin-manager publish-image`. Archives are built once per worker.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.containers import ContainerEnv, Registry, http_answer
from tests.support.image_host import CURRENT, IMAGE, ImageHost
from tests.support.procs import wait_until
from tests.support.server import BinManager


def cli(bin_manager: BinManager, *args: str) -> subprocess.CompletedProcess[str]:
    """`bin-manager ARGS` as an operator runs it."""
    return bin_manager.cli(*args)


def test_archive_release_is_loaded_run_and_upgraded(host: ImageHost) -> None:
    v1 = host.install("v1")
    assert host.current_release() == v1
    pid1 = host.supervisord.pid("web")

    v2 = host.install("v2")
    assert host.supervisord.pid("web") != pid1
    assert host.current_release() == v2
    assert host.running_image() == host.release_image(v2) == host.podman_env.image_id(f"{IMAGE}:v2")
    assert host.release_image(v1) != host.release_image(v2)  # v1 stays for a rollback
    entry = host.entry("web")
    assert (entry["version"], entry["previousVersion"]) == (v2, v1)
    assert entry["history"] == {v1: "ok", v2: "ok"}
    assert entry["upgradePath"][v2] == v1

    status = host.run(command="status")
    assert status.returncode == 0, host.debug(status)
    row = next(line for line in status.stdout.splitlines() if line.startswith("web "))
    assert f"web ({IMAGE})" in row
    assert v2[:12] in row
    assert f"ok ({v2[:12]})" in row


def test_release_that_exits_at_start_is_rolled_back_and_quarantined(host: ImageHost) -> None:
    v2 = host.install("v2")
    v3 = host.publish("v3")

    result = host.run()
    assert result.returncode == 1, host.debug(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ansible-proxy: web: web@{v3[:12]}: ")
    assert lines[0].endswith("; rolled back")
    host.wait_answer("web v2")
    assert host.current_release() == v2
    assert host.running_image() == host.release_image(v2)
    entry = host.entry("web")
    assert entry["version"] == v2
    assert entry["history"] == {v2: "ok", v3: "err"}

    pid = host.supervisord.pid("web")
    again = host.run()
    assert again.returncode == 0, host.debug(again)
    assert "latest is known bad" in host.log()
    assert host.supervisord.pid("web") == pid  # not retried: no restart
    assert host.current_release() == v2


def test_registry_release_is_pulled_by_its_digest(
    host: ImageHost, container_env: ContainerEnv, registry: Registry
) -> None:
    v2 = host.install("v2")
    container_env.podman("load", "--input", str(host.archives["v4"]))
    v4_id = container_env.image_id(f"{IMAGE}:v4")
    reference = registry.push(container_env, f"{IMAGE}:v4")
    container_env.podman("rmi", f"{IMAGE}:v4")  # only the registry has it now

    published = cli(host.bin_manager, "publish-image", reference, "--name", "web")
    assert published.returncode == 0, published.stderr
    v4 = published.stdout.strip()

    result = host.run()
    assert result.returncode == 0, host.debug(result)
    host.wait_answer("web v4")
    assert host.current_release() == v4
    assert host.running_image() == host.release_image(v4) == v4_id
    digest = reference.split("@", 1)[1]
    pulled = container_env.podman("image", "inspect", "--format", "{{.Digest}}", CURRENT)
    assert pulled.stdout.strip() == digest
    entry = host.entry("web")
    assert (entry["version"], entry["previousVersion"]) == (v4, v2)
    assert entry["history"] == {v2: "ok", v4: "ok"}


def test_corrupt_archive_and_missing_digest_change_nothing(
    host: ImageHost, registry: Registry
) -> None:
    v2 = host.install("v2")
    pid = host.supervisord.pid("web")
    before = host.entry("web")

    corrupt = host.bin_manager.publish("web", os.urandom(64 * 1024))
    missing = f"{registry.host}/web@sha256:{uuid.uuid4().hex * 2}"
    for bad, what, why in (
        (corrupt, "image archive refused: not a tar file", "publish the tar podman save"),
        (None, "podman pull failed: ", "manifest unknown"),
    ):
        if bad is None:
            published = cli(host.bin_manager, "publish-image", missing, "--name", "web")
            assert published.returncode == 0, published.stderr
            bad = published.stdout.strip()
        result = host.run()
        assert result.returncode == 1, host.debug(result)
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"ansible-proxy: web: web@{bad[:12]}: {what}"), lines
        assert why in lines[0], lines
        report = host.last_progress()
        assert (report["targetHash"], report["status"]) == (bad, "failed"), report
        assert report["reason"].startswith(f"image: {what}"), report
        assert host.supervisord.pid("web") == pid
        assert host.current_release() == v2
        assert http_answer(host.port) == "web v2"
        assert host.entry("web") == before, host.log()


@pytest.mark.parametrize("point", ["after-download", "after-replace"])
def test_agent_killed_between_load_and_restart_converges(host: ImageHost, point: str) -> None:
    """after-download: v2 loaded and release-tagged, nothing recorded; after-replace: v2 is
    `current` too, the upgrade recorded pending, the v1 container still running."""
    v1 = host.install("v1")
    v2 = host.publish("v2")

    crashed = host.run(ANSIBLE_PROXY_TEST_CRASH_AT=point)
    assert crashed.returncode == -9, host.debug(crashed)
    assert host.release_image(v2) != host.release_image(v1)  # v2 is in the engine
    assert host.current_release() == (v2 if point == "after-replace" else v1)
    assert http_answer(host.port) == "web v1"  # not restarted yet

    result = host.run()
    assert result.returncode == 0, host.debug(result)
    host.wait_answer("web v2")
    assert host.current_release() == v2
    assert host.running_image() == host.release_image(v2)
    entry = host.entry("web")
    assert (entry["version"], entry["previousVersion"]) == (v2, v1)
    assert entry["history"] == {v1: "ok", v2: "ok"}
    assert entry["upgradePath"][v2] == v1
    finished = "finishing an interrupted upgrade" in host.log()
    assert finished == (point == "after-replace"), host.log()


def test_inspector_rolls_back_an_image_whose_port_closed_without_network(
    host: ImageHost,
) -> None:
    host.env["CHECK_FAILURES"] = "1"
    v1 = host.install("v1")
    v5 = host.install("v5")
    bad_pid = host.supervisord.pid("web")
    wait_until(lambda: http_answer(host.port) is None, 20, "v5 to close its port")
    host.bin_manager.stop()  # the rollback needs no network: v1 is still in the engine

    result, answer = host.check()
    row = next(s for s in answer["services"] if s["service"] == "web")
    assert (result.returncode, row["action"], row["rollbackTo"]) == (1, "rolled-back", v1), answer
    assert row["checks"]["port"]["outcome"] == "unhealthy"
    host.wait_answer("web v1")
    assert host.supervisord.pid("web") != bad_pid
    assert host.current_release() == v1
    assert host.running_image() == host.release_image(v1)
    entry = host.entry("web")
    assert entry["version"] == v1
    assert entry["history"] == {v1: "ok", v5: "err"}


def test_the_docker_cli_is_used_when_chosen(host: ImageHost, tmp_path: Path) -> None:
    """CONTAINER_ENGINE=docker calls `docker` (here as Debian's podman-docker provides it:
    a `docker` that runs podman); the same upgrade follows."""
    bindir = tmp_path / "docker-bin"
    bindir.mkdir()
    calls = tmp_path / "docker-calls"
    docker = bindir / "docker"
    docker.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec /usr/bin/podman "$@"\n')
    docker.chmod(0o755)
    host.env["PATH"] = f"{bindir}:/usr/bin:/bin"
    host.env["CONTAINER_ENGINE"] = "docker"
    host.install("v1")
    v2 = host.install("v2")
    assert host.current_release() == v2
    used = calls.read_text().splitlines()
    assert any(line.startswith("load --input ") for line in used), used
    v2_image = f"sha256:{host.release_image(v2)}"  # tagged by its verified ID, not a tag
    assert f"tag {v2_image} {IMAGE}:sha256-{v2}" in used, used
    assert f"tag {v2_image} {IMAGE}:current" in used, used
    assert host.run(CONTAINER_ENGINE="rkt").returncode == 2  # one line naming the key

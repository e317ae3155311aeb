"""An image release the host could not try, for the host's own reasons, with real podman:
a full engine store (podman's reason kept, the release not held against), a registry that
is down (the next tick pulls again: exit 75), a load longer than LOAD_TIMEOUT."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.agent import Agent
from tests.support.containers import ContainerEnv, Registry
from tests.support.image_host import IMAGE, Archives, ImageHost
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

FULL = "no space left on device"


@pytest.fixture
def small_store() -> Iterator[ContainerEnv]:
    """A podman store on a 600 KiB tmpfs: smaller than any release's image."""
    mount = Path(tempfile.mkdtemp(prefix="full-", dir="/tmp"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], check=True)
    env = ContainerEnv(mount / "podman")
    try:
        yield env
    finally:
        env.cleanup()
        subprocess.run(["umount", "--lazy", str(mount)], check=False)
        mount.rmdir()


def test_a_full_engine_store_keeps_podman_s_reason_and_is_not_the_release_s(
    tmp_path: Path,
    bin_manager: BinManager,
    supervisord: Supervisord,
    small_store: ContainerEnv,
    archives: Archives,
) -> None:
    host = Agent(
        tmp_path / "host", bin_manager.api, supervisord.socket_url, bin_manager.enrolment_token
    )
    host.env.update(small_store.env)
    entry = {"serviceName": "web", "binaryName": "web", "image": IMAGE, "version": ""}
    host.manifest_path.write_text(json.dumps({"binaries": [entry]}))
    sha = bin_manager.publish("web", archives["v1"])

    result = host.run()
    assert result.returncode == 1, host.debug(result)
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"ansible-proxy: web: web@{sha[:12]}: podman load failed: "), line
    assert FULL in line, line
    assert "payload does not match" not in line, line
    detail = bin_manager.admin_get("/nodes/host-001").json()["data"]
    report = detail["progress"][0]
    assert (report["targetHash"], report["status"], report["cause"]) == (sha, "failed", "host")
    assert FULL in report["reason"]
    assert host.entry("web").get("history", {}).get(sha) is None  # not held as bad here


def test_a_registry_that_is_down_is_retried_next_tick(
    host: ImageHost, container_env: ContainerEnv, registry: Registry
) -> None:
    v2 = host.install("v2")
    container_env.podman("load", "--input", str(host.archives["v4"]))
    reference = registry.push(container_env, f"{IMAGE}:v4")
    container_env.podman("rmi", f"{IMAGE}:v4")  # only the registry has it now
    published = host.bin_manager.cli("publish-image", reference, "--name", "web")
    assert published.returncode == 0, published.stderr
    v4 = published.stdout.strip()
    registry.stop()

    down = host.run()
    assert down.returncode == 75, host.debug(down)  # retried next tick: no cron mail
    assert down.stderr == ""
    assert "the registry did not answer" in host.log()
    report = host.last_progress()
    assert (report["targetHash"], report["status"], report["cause"]) == (v4, "failed", "host")
    assert host.current_release() == v2
    assert host.entry("web")["history"] == {v2: "ok"}

    registry.start()
    back = host.run()
    assert back.returncode == 0, host.debug(back)
    host.wait_answer("web v4")
    assert host.current_release() == v4


def test_a_load_longer_than_load_timeout_is_retried_next_tick(host: ImageHost) -> None:
    v1 = host.publish("v1")

    slow = host.run(LOAD_TIMEOUT="0.001")  # no podman loads an image that fast
    assert slow.returncode == 75, host.debug(slow)
    assert "podman load did not answer within 0.001 s (LOAD_TIMEOUT)" in host.log()
    assert host.entry("web").get("history", {}).get(v1) is None

    assert host.run(LOAD_TIMEOUT="0").returncode == 2  # no deadline is "for ever"
    done = host.run()  # the default, 900 s
    assert done.returncode == 0, host.debug(done)
    host.wait_answer("web v1")
    assert host.current_release() == v1

"""The podman test infrastructure, for real: offline images as OCI archives, a container
under supervisord that moves from v1 to v2, a bad release that exits at start, and a round
trip through a registry by digest. No container is left afterwards."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from tests.support.containers import (
    ContainerEnv,
    Registry,
    build_image,
    failing_script,
    http_answer,
    web_script,
)
from tests.support.procs import free_port, wait_until
from tests.support.supervisor import Supervisord


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_images_run_under_supervisord_and_travel_through_a_registry(
    tmp_path: Path,
    container_env: ContainerEnv,
    container_supervisord: Supervisord,
    registry: Registry,
) -> None:
    podman = container_env.podman
    port = free_port()
    v1 = build_image(
        container_env, "localhost/web", "v1", web_script("web v1", port), tmp_path / "v1.oci"
    )
    v2 = build_image(
        container_env, "localhost/web", "v2", web_script("web v2", port), tmp_path / "v2.oci"
    )
    bad = build_image(container_env, "localhost/web", "v3", failing_script(), tmp_path / "v3.oci")
    assert len({sha256_of(v1), sha256_of(v2), sha256_of(bad)}) == 3

    podman("load", "-i", str(v1))
    podman("tag", "localhost/web:v1", "localhost/web:current")
    name = f"web-{uuid.uuid4().hex[:8]}"
    run = tmp_path / "run-web"
    run.write_text(
        "#!/bin/sh\n"
        f"exec podman run --rm --replace --name {name} --network host localhost/web:current\n"
    )
    run.chmod(0o755)
    container_supervisord.add_program("web", run)
    container_supervisord.wait_running("web")
    wait_until(lambda: http_answer(port) == "web v1", 20, "web v1 answering")

    podman("load", "-i", str(v2))
    podman("tag", "localhost/web:v2", "localhost/web:current")
    v2_id = container_env.image_id("localhost/web:v2")
    assert container_env.image_id("localhost/web:v1") != v2_id
    container_supervisord.call("stopProcess", "web")
    container_supervisord.call("startProcess", "web")
    wait_until(lambda: http_answer(port) == "web v2", 20, "web v2 answering")

    pushed = registry.push(container_env, "localhost/web:v2")
    assert pushed.startswith(f"{registry.host}/web@sha256:")
    assert registry.tags("web") == ["v2"]

    container_supervisord.call("stopProcess", "web")
    podman("load", "-i", str(bad))
    failed = podman("run", "--rm", "--network", "host", "localhost/web:v3", check=False)
    assert (failed.returncode, failed.stderr.strip()) == (3, "bad release")

    wait_until(lambda: container_env.containers() == [], 10, "no container left")
    podman("rmi", "--all", "--force")
    podman("pull", "--tls-verify=false", pushed)
    podman("tag", pushed, "localhost/web:pulled")
    assert container_env.image_id("localhost/web:pulled") == v2_id
    assert container_env.containers() == []

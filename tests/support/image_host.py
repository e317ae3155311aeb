"""A host whose manifest manages an image: the agent, supervisord running `podman run`,
the bin-manager, all real (tests/integration/containers/).

`ImageHost` manages `localhost/web` as program `web`; `Archives` builds each release's
OCI archive once per worker; `no_container_left` is the check after every test.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.agent import Agent
from tests.support.containers import (
    ContainerEnv,
    build_image,
    failing_script,
    http_answer,
    run_script,
    stubborn_script,
    web_script,
)
from tests.support.procs import free_port, wait_until
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

IMAGE = "localhost/web"
CURRENT = f"{IMAGE}:current"
SCRIPTS = {
    "v1": web_script("web v1"),
    "v2": web_script("web v2"),
    "v3": failing_script("v3 cannot start"),
    "v4": web_script("web v4"),
    # Healthy through the agent's watch (startsecs 3 + WATCH_SECONDS 2), then its port closes.
    "v5": web_script("web v5", stop_after=8),
    # PID 1 ignores SIGTERM: stopping `podman run` leaves the container serving.
    "s1": stubborn_script("web s1"),
    "s2": stubborn_script("web s2"),
}


class Archives:
    """The releases as OCI archives, each built on first use (about a second each)."""

    def __init__(self, env: ContainerEnv, root: Path) -> None:
        self.env = env
        self.root = root

    def __getitem__(self, tag: str) -> Path:
        out = self.root / f"web-{tag}.oci"
        if not out.exists():
            build_image(self.env, IMAGE, tag, SCRIPTS[tag], out)
        return out


@pytest.fixture(scope="session")
def archives(container_store: ContainerEnv, tmp_path_factory: pytest.TempPathFactory) -> Archives:
    return Archives(container_store, tmp_path_factory.mktemp("archives"))


class ImageHost(Agent):
    """A host whose manifest manages `localhost/web` run by supervisord as program `web`.

    The container is named `container`, by default the serviceName (the agent's rule);
    another name is given to the agent by the entry's `container` field.
    """

    def __init__(
        self,
        root: Path,
        bin_manager: BinManager,
        supervisord: Supervisord,
        env: ContainerEnv,
        archives: Archives,
        container: str = "web",
    ) -> None:
        super().__init__(root, bin_manager.api, supervisord.socket_url, bin_manager.enrolment_token)
        self.bin_manager = bin_manager
        self.supervisord = supervisord
        self.podman_env = env
        self.archives = archives
        self.env.update(env.env)  # the agent's podman calls use the worker's test store
        self.env["WATCH_SECONDS"] = "2"
        self.port = free_port()
        self.container = container
        entry: dict[str, Any] = {
            "serviceName": "web",
            "binaryName": "web",
            "image": IMAGE,
            "port": self.port,
            "version": "",
            "previousVersion": "",
        }
        if container != "web":
            entry["container"] = container
        doc = {
            "binaries": [entry],
            "nodeInfo": {"cpuArch": "", "osRelease": "", "nodeName": "", "binProxyVersion": ""},
        }
        self.manifest_path.write_text(json.dumps(doc, indent=2))
        # startsecs 3: `podman run` of an image that exits at once still lives ~1 s.
        self.program = run_script(root / "run-web", container, CURRENT, self.port)
        supervisord.add_program("web", self.program, startsecs=3)

    def pin(self, image: str) -> None:
        """Make the program run `image` (a fixed tag) instead of `:current` from its next
        start, as an operator who edits the program's command does."""
        run_script(self.program, self.container, image, self.port)

    def publish(self, tag: str) -> str:
        return self.bin_manager.publish("web", self.archives[tag])

    def install(self, tag: str) -> str:
        """Publish release `tag` and let the agent install it; its sha256."""
        sha = self.publish(tag)
        result = self.run()
        assert result.returncode == 0, self.debug(result)
        self.wait_answer(f"web {tag}")
        return sha

    def wait_answer(self, line: str) -> None:
        wait_until(lambda: http_answer(self.port) == line, 20, f"{line!r} on {self.port}")

    def current_release(self) -> str | None:
        """The release sha256 `localhost/web:current` carries (the agent's `sha256-` tag)."""
        out = self.podman_env.podman("image", "inspect", "--format", "{{json .RepoTags}}", CURRENT)
        tags = json.loads(out.stdout)
        found = [t.rsplit(":sha256-", 1)[1] for t in tags if ":sha256-" in t]
        return found[0] if len(found) == 1 else None

    def release_image(self, sha: str) -> str:
        return self.podman_env.image_id(f"{IMAGE}:sha256-{sha}")

    def running_image(self) -> str:
        """The image ID of the container (running or not: see `containers()`)."""
        out = self.podman_env.podman(
            "container", "inspect", "--format", "{{.Image}}", self.container
        )
        return out.stdout.strip()

    def containers(self) -> list[tuple[str, str, str]]:
        """(name, image ID, state) of every container in the store."""
        out = self.podman_env.podman("ps", "-a", "--format", "json")
        return [(c["Names"][0], c["ImageID"], c["State"]) for c in json.loads(out.stdout)]

    def check(self, *flags: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        result = self.run("--json", *flags, command="check")
        assert result.returncode in (0, 1, 3), self.debug(result)
        answer: dict[str, Any] = json.loads(result.stdout)
        return result, answer

    def last_progress(self) -> dict[str, Any]:
        """The newest progress report the bin-manager holds from this host."""
        detail = self.bin_manager.admin_get(f"/nodes/{self.env['NODE_NAME']}")
        assert detail.status_code == 200, detail.text
        latest: dict[str, Any] = detail.json()["data"]["progress"][0]
        return latest

    def stop(self) -> None:
        """Stop the program, then its container: one whose PID 1 ignores SIGTERM outlives
        `podman run` (the old code's bug must not leak into the next test)."""
        with contextlib.suppress(xmlrpc.client.Fault):
            self.supervisord.call("stopProcess", "web")
        self.podman_env.podman("rm", "--force", "--time", "0", self.container, check=False)


def _host(
    root: Path,
    bin_manager: BinManager,
    supervisord: Supervisord,
    env: ContainerEnv,
    archives: Archives,
    container: str,
) -> Iterator[ImageHost]:
    made = ImageHost(root, bin_manager, supervisord, env, archives, container)
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
def host(
    tmp_path: Path,
    bin_manager: BinManager,
    container_supervisord: Supervisord,
    container_env: ContainerEnv,
    archives: Archives,
) -> Iterator[ImageHost]:
    """An image host whose container is named after the service (`web`)."""
    yield from _host(
        tmp_path / "host", bin_manager, container_supervisord, container_env, archives, "web"
    )


@pytest.fixture
def host_pinned(
    tmp_path: Path,
    bin_manager: BinManager,
    container_supervisord: Supervisord,
    container_env: ContainerEnv,
    archives: Archives,
) -> Iterator[ImageHost]:
    """An image host whose container is `web-pinned`, named by the entry's `container`."""
    yield from _host(
        tmp_path / "host", bin_manager, container_supervisord, container_env, archives,
        "web-pinned",
    )  # fmt: skip


def no_container_left(env: ContainerEnv) -> None:
    """No container, no podman or conmon process of `env`'s store is left."""
    wait_until(lambda: env.containers() == [], 15, "every container removed")
    root = str(env.root)

    def ours() -> list[str]:
        """conmon names the store in its arguments; podman (run, load, pull) has it in its
        environment."""
        left = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            try:
                conf = proc.environ().get("CONTAINERS_CONF", "")
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                conf = ""
            if root in cmdline or conf.startswith(root):
                left.append(f"{proc.pid}: {cmdline[:200]}")
        return left

    wait_until(lambda: ours() == [], 15, "no podman/conmon process of the test store")

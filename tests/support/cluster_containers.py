"""The cluster lab with podman on its hosts, for the container example package.

`ContainerCluster` gives each ClusterLab host its own ContainerEnv (config, image store,
run state and locks under a short /tmp root: the hosts share the machine's filesystem,
never an image store), writes a YAML inventory whose `podman_env` host var hands that
environment to every podman the playbooks and the supervisor program run, and runs
`ansible-proxy cluster run` with Debian's containers.podman collection on
ANSIBLE_COLLECTIONS_PATH. The hosts' podman is a wrapper (`podman_executable`) that
runs it in the test's mount namespace: `ip netns exec` gives each namespace a /sys of
its own, without the cgroup hierarchy runc needs. `running_container_cluster` stops the
programs (so podman removes their containers), then the lab, then every store, even
after a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

from examples.cluster.containers.build_package import build_package

from tests.support.cluster import SERVICE_PORT, VENV_BIN, ClusterLab
from tests.support.containers import PODMAN, ContainerEnv, PodmanError, build_image

# Debian's `ansible` package (bookworm: 7.7, containers.podman 1.10.2) bundles its
# collections here; the venv's ansible-core finds them through ANSIBLE_COLLECTIONS_PATH.
DEBIAN_COLLECTIONS = Path("/usr/lib/python3/dist-packages")
SERVICE = "web"
PACKAGE = "web-pkg"
REPOSITORY = "localhost/web"


def listening_web_script(line: str) -> str:
    """A service answering `line` at /version on $WEB_LISTEN (ADDRESS:PORT), which the
    example's supervisor program sets to the host's address; ends on SIGTERM as PID 1."""
    return textwrap.dedent(f"""\
        mkdir -p /www
        echo {shlex.quote(line)} > /www/version
        httpd -f -p "$WEB_LISTEN" -h /www &
        pid=$!
        trap 'kill $pid; exit 0' TERM INT
        wait $pid
        """)


class ContainerCluster:
    """A ClusterLab whose hosts each have a private podman, driven with the web package."""

    def __init__(self, lab: ClusterLab) -> None:
        self.lab = lab
        # conmon's sockets live under each store's run dir: keep the root short (sun_path).
        self.store_root = Path(tempfile.mkdtemp(prefix="apcp-", dir="/tmp"))
        self.engines = {h.name: ContainerEnv(self.store_root / h.name) for h in lab.hosts}
        self.builder = ContainerEnv(self.store_root / "build")
        self.podman = self.store_root / "bin" / "podman"
        self.inventory = lab.root / "web-inventory.yml"
        self.manifests = lab.root / "web-cluster.yaml"

    def start(self) -> ContainerCluster:
        podman = DEBIAN_COLLECTIONS / "ansible_collections" / "containers" / "podman"
        if not podman.is_dir():
            raise RuntimeError(f"{podman} is missing: scripts/install-system-deps installs it")
        self._write_podman()
        self._write_inventory()
        return self

    def _write_podman(self) -> None:
        # This process's mount namespace (it outlives every host's podman): the
        # machine's /sys/fs/cgroup; the network namespace stays the host's.
        self.podman.parent.mkdir()
        self.podman.write_text(
            f'#!/bin/sh\nexec nsenter --mount=/proc/{os.getpid()}/ns/mnt -- {PODMAN} "$@"\n'
        )
        self.podman.chmod(0o755)

    def _write_inventory(self) -> None:
        lab = self.lab
        hosts = {
            h.name: {
                "ansible_host": h.address,
                "cpu_arch": h.arch,
                "node_name": f"node-{h.name}",
                "app_dir": str(h.app_dir),
                "supervisor_conf_dir": str(h.root / "conf.d"),
                "supervisor_config": str(h.supervisor_conf),
                "podman_env": self.engines[h.name].env,
                "podman_executable": str(self.podman),
            }
            for h in lab.hosts
        }
        group_vars = {
            "services": [SERVICE],
            "os_release": "Debian GNU/Linux 12 (bookworm)",
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(lab.key),
            "ansible_python_interpreter": "/usr/bin/python3",
            "supervisorctl": str(VENV_BIN / "supervisorctl"),
            "web_repository": REPOSITORY,
            "web_port": SERVICE_PORT,
        }
        inventory = {"all": {"children": {"web_nodes": {"hosts": hosts, "vars": group_vars}}}}
        self.inventory.write_text(json.dumps(inventory, indent=2) + "\n")  # JSON is YAML

    # -- releases ----------------------------------------------------------------------
    def package(self, version: str, script: str, arch: str = "x86_64") -> bytes:
        """The example package around a busybox image running `script`, built offline."""
        archive = self.lab.root / "images" / f"web-{arch}-{version}.tar"
        build_image(self.builder, REPOSITORY, version, script, archive)
        return build_package(arch, archive)

    def publish(self, version: str, script: str, arch: str = "x86_64") -> str:
        """Publish version `version` of the package for `arch`; returns its sha256."""
        return self.lab.bin_manager.publish(PACKAGE, self.package(version, script, arch), arch)

    # -- driving the proxy -------------------------------------------------------------
    def write_manifests(self, health_timeout: float = 30) -> Path:
        self.manifests.write_text(
            textwrap.dedent(f"""\
            services:
              {SERVICE}:
                package: {PACKAGE}
                health: {{port: {SERVICE_PORT}, timeout: {health_timeout}}}
                playbooks: {{deploy: deploy.yml, rollback: rollback.yml}}
                serial: 0
            """)
        )
        return self.manifests

    def run(self, manifests: Path) -> subprocess.CompletedProcess[str]:
        """`ansible-proxy cluster run` as cron runs it, the collection on its path."""
        lab = self.lab
        (lab.root / "no-config").write_text("")
        env = {**lab.env(), "ANSIBLE_COLLECTIONS_PATH": str(DEBIAN_COLLECTIONS)}
        argv = [str(VENV_BIN / "ansible-proxy"), "cluster", "run"]
        argv += ["--inventory", str(self.inventory), "--manifests", str(manifests)]
        argv += ["--work-dir", str(lab.work_dir)]
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, check=False, timeout=150
        )

    # -- inspecting and ending ---------------------------------------------------------
    def tag_id(self, host: str, tag: str) -> str:
        """The image id `REPOSITORY:tag` names in `host`'s store."""
        return self.engines[host].image_id(f"{REPOSITORY}:{tag}")

    def containers(self) -> dict[str, list[str]]:
        """Every container of every host's store, running or not."""
        return {name: engine.containers() for name, engine in self.engines.items()}

    def stop_programs(self) -> None:
        """Stop every supervisor program: each `podman run --rm` removes its container."""
        for host in self.lab.hosts:
            if host.supervisord is not None and host.supervisord.running():
                host.supervisor("stopAllProcesses")

    def cleanup(self) -> None:
        """Remove every container, image and store (the lab is stopped by then)."""
        for engine in (*self.engines.values(), self.builder):
            with contextlib.suppress(PodmanError, subprocess.TimeoutExpired):
                engine.cleanup()
        shutil.rmtree(self.store_root, ignore_errors=True)


@contextlib.contextmanager
def running_container_cluster(root: Path, hosts: int = 2) -> Iterator[ContainerCluster]:
    """`hosts` x86_64 namespace hosts with podman; everything ended afterwards."""
    lab = ClusterLab(root, ["x86_64"] * hosts)
    cluster = ContainerCluster(lab)
    try:
        lab.start()
        yield cluster.start()
    finally:
        with contextlib.suppress(Exception):
            cluster.stop_programs()
        lab.stop()
        cluster.cleanup()

"""Fixtures for cluster mode: hosts as network namespaces with a real sshd and supervisord.

`ClusterLab(root, arches)` builds a bridge (198.51.100.1/24) and one namespace per host
(198.51.100.11, .12, …) joined by a veth pair, each running Debian's sshd (keys made
with ssh-keygen) and its own supervisord; a real bin-manager on 127.0.0.1 and a real
nginx cache (rendered by `ansible-proxy cluster nginx-config`) on 198.51.100.1.
Everything is torn down by PID and `ip netns del` in `stop()`, even after a failure.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from supervisor.xmlrpc import SupervisorTransport

from tests.support.procs import Service, free_port, port_open, wait_until
from tests.support.server import BinManager

VENV_BIN = Path(sys.executable).parent
SSHD = "/usr/sbin/sshd"
NGINX = "/usr/sbin/nginx"
BRIDGE_ADDRESS = "198.51.100.1"
SERVICE_PORT = 18080
_labs = itertools.count()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class LabHost:
    """One namespace host: its address, arch, directories and daemons."""

    name: str
    netns: str
    address: str
    arch: str
    root: Path
    sock: Path
    sshd: Service | None = None
    supervisord: Service | None = None

    @property
    def app_dir(self) -> Path:
        return self.root / "app"

    @property
    def supervisor_conf(self) -> Path:
        return self.root / "supervisord.conf"

    def supervisor(self, method: str, *args: Any) -> Any:
        """One XML-RPC call to this host's supervisord (unix sockets cross namespaces)."""
        transport = SupervisorTransport(None, None, f"unix://{self.sock}")
        try:
            proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
            return getattr(proxy.supervisor, method)(*args)
        finally:
            transport.close()

    def stop_sshd(self) -> None:
        """Stop sshd and its per-connection children (they leave its process group, and
        would keep serving the proxy's persistent SSH connections)."""
        assert self.sshd is not None
        self.sshd.stop()
        listed = subprocess.run(
            ["ip", "netns", "pids", self.netns], check=True, capture_output=True, text=True
        )
        for pid in listed.stdout.split():
            try:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if name == "sshd":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)

    def start_sshd(self) -> None:
        assert self.sshd is not None
        self.sshd.start()
        wait_until(lambda: port_open(22, self.address), 20, f"sshd of {self.name}")

    def get(self, path: str = "/") -> str:
        """GET from the host's service over the bridge ("" when it does not answer)."""
        try:
            response = httpx.get(f"http://{self.address}:{SERVICE_PORT}{path}", timeout=2)
        except httpx.HTTPError:
            return ""
        return response.text


class ClusterLab:
    """The hosts, the bin-manager, the nginx cache and an inventory describing them."""

    def __init__(self, root: Path, arches: list[str]) -> None:
        self.root = root
        tag = f"{os.getpid() % 10000}{next(_labs)}"  # namespaces die asynchronously: new names
        self.bridge = f"apbr{tag}"
        self.sockdir = Path(tempfile.mkdtemp(prefix="apcl-", dir="/tmp"))
        self.hosts = [
            LabHost(
                name=f"h{i}",
                netns=f"ap{tag}h{i}",
                address=f"198.51.100.{10 + i}",
                arch=arch,
                root=root / "hosts" / f"h{i}",
                sock=self.sockdir / f"h{i}.sock",
            )
            for i, arch in enumerate(arches, start=1)
        ]
        # Node credentials as in production: the cluster proxy writes with its own token
        # (start() creates it), the role tests' agents enrol with the enrolment token.
        self.bin_manager = BinManager(root / "bin-manager", node_auth="required")
        self.nginx: Service | None = None
        self.nginx_port = free_port()
        self.cache_url = f"http://{BRIDGE_ADDRESS}:{self.nginx_port}"
        self.key = root / "ssh" / "id_ed25519"
        self.inventory = root / "inventory.ini"
        self.work_dir = root / "cluster"
        self.extra_env: dict[str, str] = {}  # more of the proxy's keys (e.g. TRUSTED_KEYS)
        self._netns: list[str] = []
        self._veths: list[str] = []
        self._bridge_made = False

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> ClusterLab:
        self.bin_manager.start()
        # The cluster proxy speaks for its inventory's nodes with its own credential.
        self.proxy_token = self.bin_manager.create_proxy("cluster-lab")
        self._keys()
        _ip("link", "add", self.bridge, "type", "bridge")
        self._bridge_made = True
        _ip("addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for index, host in enumerate(self.hosts, start=1):
            self._start_host(index, host)
        self._start_nginx()
        self._write_inventory()
        return self

    def stop(self) -> None:
        """Stop every daemon by PID, delete namespaces and the bridge; never raises."""
        for host in self.hosts:
            for service in (host.supervisord, host.sshd):
                if service is not None:
                    with contextlib.suppress(Exception):
                        service.stop()
        if self.nginx is not None:
            with contextlib.suppress(Exception):
                self.nginx.stop()
        for netns in self._netns:
            self._end_everything_in(netns)
        for veth in self._veths:  # deleting one end deletes the pair, at once
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("link", "del", veth)
        for netns in self._netns:
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", netns)
        if self._bridge_made:
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("link", "del", self.bridge)
        with contextlib.suppress(Exception):
            self.bin_manager.stop()
        shutil.rmtree(self.sockdir, ignore_errors=True)

    @staticmethod
    def _end_everything_in(netns: str) -> None:
        """SIGKILL, by PID, what still runs in `netns`: sshd's per-connection children
        leave sshd's process group, and a namespace lives while any process is in it."""
        with contextlib.suppress(subprocess.CalledProcessError):
            listed = subprocess.run(
                ["ip", "netns", "pids", netns], check=True, capture_output=True, text=True
            )
            for pid in listed.stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)

    def _keys(self) -> None:
        ssh = self.root / "ssh"
        ssh.mkdir(parents=True)
        for key in (self.key, ssh / "host_ed25519"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                check=True,
                capture_output=True,
            )
        shutil.copy(self.key.with_suffix(".pub"), ssh / "authorized_keys")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir

    def _start_host(self, index: int, host: LabHost) -> None:
        outer, inner = f"{self.bridge}v{index}", f"{self.bridge}c{index}"
        _ip("netns", "add", host.netns)
        self._netns.append(host.netns)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        self._veths.append(outer)
        _ip("link", "set", inner, "netns", host.netns)
        _ip("link", "set", outer, "master", self.bridge)
        _ip("link", "set", outer, "up")
        inside = ["netns", "exec", host.netns, "ip"]
        _ip(*inside, "addr", "add", f"{host.address}/24", "dev", inner)
        _ip(*inside, "link", "set", inner, "up")
        _ip(*inside, "link", "set", "lo", "up")
        for sub in ("app/bin", "app/packages", "conf.d"):
            (host.root / sub).mkdir(parents=True)
        ssh = self.root / "ssh"
        sshd_conf = host.root / "sshd_config"
        sshd_conf.write_text(
            textwrap.dedent(f"""\
            ListenAddress {host.address}
            Port 22
            HostKey {ssh / "host_ed25519"}
            PidFile {host.root / "sshd.pid"}
            AuthorizedKeysFile {ssh / "authorized_keys"}
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            Subsystem sftp internal-sftp
            """)
        )
        host.sshd = Service(
            ["ip", "netns", "exec", host.netns, SSHD, "-D", "-e", "-f", str(sshd_conf)],
            host.root / "sshd.log",
        ).start()
        host.supervisor_conf.write_text(
            textwrap.dedent(f"""\
            [supervisord]
            nodaemon=true
            logfile={host.root}/supervisord.log
            pidfile={host.root}/supervisord.pid
            childlogdir={host.root}
            [unix_http_server]
            file={host.sock}
            [supervisorctl]
            serverurl=unix://{host.sock}
            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
            [include]
            files = {host.root}/conf.d/*.conf
            """)
        )
        supervisord_argv = [str(VENV_BIN / "supervisord"), "-c", str(host.supervisor_conf)]
        host.supervisord = Service(
            ["ip", "netns", "exec", host.netns, *supervisord_argv],
            host.root / "supervisord.out",
        ).start()
        sshd, supervisord = host.sshd, host.supervisord
        waiting = ["nothing yet"]  # what the last look saw, for the error below

        def ready() -> bool:
            for service in (sshd, supervisord):
                if not service.running():
                    raise RuntimeError(f"{host.name}: {service.argv[4]} exited: {service.log()}")
            if not port_open(22, host.address):
                waiting[0] = f"port 22 of {host.address} refused or timed out"
                return False
            try:
                state = host.supervisor("getState")["statename"]
            except OSError as exc:
                waiting[0] = f"supervisord's socket {host.sock}: {exc}"
                return False
            waiting[0] = f"supervisord is {state}"
            return bool(state == "RUNNING")

        try:
            wait_until(ready, 60, f"sshd and supervisord of {host.name}")
        except TimeoutError as exc:  # say what was missing: a CI log is all there is
            raise TimeoutError(f"{exc}: {waiting[0]}\n{self._diagnose(host)}") from None

    def _diagnose(self, host: LabHost) -> str:
        """What the namespace, its listeners and both daemons' logs say (for a failed start)."""
        looks = [
            ["ip", "-br", "addr"],
            ["ip", "route", "get", host.address],
            ["ip", "netns", "exec", host.netns, "ip", "-br", "addr"],
            ["ip", "netns", "exec", host.netns, "ss", "-ltnx"],
        ]
        said = []
        for argv in looks:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            said.append(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}")
        for service in (host.sshd, host.supervisord):
            if service is not None:
                said.append(f"--- {service.log_path}\n{service.log()[-2000:]}")
        return "\n".join(said)

    def _start_nginx(self) -> None:
        cache = self.root / "nginx"
        conf = cache / "nginx.conf"
        argv = [str(VENV_BIN / "ansible-proxy"), "cluster", "nginx-config", "--standalone"]
        argv += ["--upstream", self.bin_manager.url, "--cache-dir", str(cache)]
        argv += ["--listen", f"{BRIDGE_ADDRESS}:{self.nginx_port}", "--output", str(conf)]
        subprocess.run(
            argv,
            check=True,
            capture_output=True,
        )
        # pytest's tmp dirs are 0700: the workers run as root so they can use the cache.
        argv = [NGINX, "-p", str(cache), "-c", str(conf), "-g", "daemon off; user root;"]
        self.nginx = Service(argv, cache / "nginx.out").start()
        nginx = self.nginx

        def ready() -> bool:
            if not nginx.running():
                raise RuntimeError(f"nginx exited: {nginx.log()}")
            return port_open(self.nginx_port, BRIDGE_ADDRESS)

        wait_until(ready, 20, "nginx cache")

    def _write_inventory(self) -> None:
        lines = ["[cluster]"]
        for host in self.hosts:
            lines.append(
                f"{host.name} ansible_host={host.address} cpu_arch={host.arch} "
                f"node_name=node-{host.name} app_dir={host.app_dir} "
                f"supervisor_conf_dir={host.root / 'conf.d'} "
                f"supervisor_config={host.supervisor_conf}"
            )
        lines += [
            "",
            "[cluster:vars]",
            'services=["hello"]',
            'os_release="Debian GNU/Linux 12 (bookworm)"',
            "ansible_user=root",
            f"ansible_ssh_private_key_file={self.key}",
            "ansible_python_interpreter=/usr/bin/python3",
            f"supervisorctl={VENV_BIN / 'supervisorctl'}",
            f"hello_port={SERVICE_PORT}",
        ]
        self.inventory.write_text("\n".join(lines) + "\n")

    # -- driving the proxy -------------------------------------------------------------
    def write_manifests(self, health_timeout: float = 30, serial: int = 0) -> Path:
        path = self.root / "cluster.yaml"
        path.write_text(
            textwrap.dedent(f"""\
            services:
              hello:
                package: hello-pkg
                health: {{port: {SERVICE_PORT}, timeout: {health_timeout}}}
                playbooks: {{deploy: deploy.yml, rollback: rollback.yml}}
                serial: {serial}
            """)
        )
        return path

    def env(self) -> dict[str, str]:
        """What cron would give `ansible-proxy cluster run`, plus Ansible's test settings."""
        for sub in ("cp", "ansible-local", "ansible-remote"):
            (self.root / sub).mkdir(exist_ok=True)
        return {
            "PATH": f"{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(Path.home()),
            "BIN_MANAGER_API": self.bin_manager.api,
            "BIN_MANAGER_TOKEN": self.proxy_token,
            "DOWNLOAD_BASE_URL": f"{self.cache_url}/api/v1/download",
            # the cache listens on the bridge, plain HTTP off loopback: the lab's own network
            "ALLOW_INSECURE_HTTP": "1",
            "LOCK_DIR": str(self.root / "locks"),
            "LOG_FILE": str(self.root / "cluster.log"),
            "ANSIBLE_PROXY_CONFIG": str(self.root / "no-config"),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.root / "cp"),
            "ANSIBLE_LOCAL_TEMP": str(self.root / "ansible-local"),
            "ANSIBLE_REMOTE_TMP": str(self.root / "ansible-remote"),
            "ANSIBLE_PIPELINING": "True",
            # short-lived SSH masters: none outlives a test by more than a few seconds
            "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=5s",
            # a test run against another tree's src (old code), as tests/support/agent.py
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
            **self.extra_env,
        }

    def run(self, manifests: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        """`ansible-proxy cluster run` as cron runs it."""
        (self.root / "no-config").write_text("")
        argv = [str(VENV_BIN / "ansible-proxy"), "cluster", "run"]
        argv += ["--inventory", str(self.inventory), "--manifests", str(manifests)]
        argv += ["--work-dir", str(self.work_dir), *extra]
        return subprocess.run(
            argv, env=self.env(), capture_output=True, text=True, check=False, timeout=280
        )

    def run_status(self) -> str:
        """`ansible-proxy cluster status` output (it needs no API)."""
        argv = [str(VENV_BIN / "ansible-proxy"), "cluster", "status"]
        argv += ["--work-dir", str(self.work_dir)]
        result = subprocess.run(argv, env=self.env(), capture_output=True, text=True, check=True)
        return result.stdout

    def origin_downloads(self) -> int:
        """Download requests the bin-manager answered 200 (from its /metrics)."""
        with self.bin_manager.client() as http:
            url = f"{self.bin_manager.url}/metrics"
            text = http.get(url, headers=self.bin_manager.admin_headers).text
        total = 0.0
        for line in text.splitlines():
            if (
                line.startswith("bin_manager_requests_total{")
                and 'route="/api/v1/download/{bin_name}"' in line
                and 'status="200"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return int(total)


@contextlib.contextmanager
def running_lab(root: Path, arches: list[str]) -> Iterator[ClusterLab]:
    lab = ClusterLab(root, arches)
    try:
        yield lab.start()
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def cluster_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterLab]:
    """Three namespace hosts (h3 is aarch64), shared by a module's tests."""
    with running_lab(tmp_path_factory.mktemp("cluster"), ["x86_64", "x86_64", "aarch64"]) as lab:
        yield lab

"""Podman for the container tests: a private store and config, offline images, a registry.

`ContainerEnv` writes TEST-ONLY containers.conf / storage.conf / registries.conf under its
root (runc, cgroupfs, vfs, host network, rlimits the sandbox can grant) and gives the
environment that points podman at them; pass `env` to podman, supervisord and the agent.
`build_image` makes a busybox image with no network and saves it as an OCI archive, of a
script: `web_script` (a shell PID 1 that ends on SIGTERM), `stubborn_script` (a PID 1 that
ignores it), `failing_script`. `renamed_oci_archive` and `renamed_docker_archive` give
such images any names, several to an archive: what a hostile publisher can upload.
`Registry` is a real docker-registry on 127.0.0.1, stopped by PID.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.procs import LOOPBACK, Service, free_port, http_ok, wait_until
from tests.support.supervisor import Supervisord

PODMAN = Path("/usr/bin/podman")
BUSYBOX = Path("/bin/busybox")  # busybox-static: runs in an image that holds nothing else
DOCKER_REGISTRY = Path("/usr/bin/docker-registry")
PODMAN_TIMEOUT = 60.0


class PodmanError(subprocess.CalledProcessError):
    """A podman command that failed; unlike its parent, says what podman printed."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


class ContainerEnv:
    """One private podman: config, image store, run state and locks all under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("run", "tmp", "networks"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.containers_conf = root / "containers.conf"
        self.storage_conf = root / "storage.conf"
        self.registries_conf = root / "registries.conf"
        self.containers_conf.write_text(_containers_conf(root))
        self.storage_conf.write_text(
            textwrap.dedent(f"""\
            [storage]
            driver = "vfs"
            graphroot = "{root / "graph"}"
            runroot = "{root / "run" / "storage"}"
            """)
        )
        # Only fully qualified names: nothing ever resolves to docker.io.
        self.insecure: list[str] = []  # loopback registries served over plain HTTP
        self._write_registries()
        self.env: dict[str, str] = {
            "CONTAINERS_CONF": str(self.containers_conf),
            "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
            "CONTAINERS_REGISTRIES_CONF": str(self.registries_conf),
            "XDG_RUNTIME_DIR": str(root / "run"),
            "TMPDIR": str(root / "tmp"),
        }

    def _write_registries(self) -> None:
        text = 'unqualified-search-registries = []\nshort-name-mode = "enforcing"\n'
        for host in self.insecure:
            text += f'\n[[registry]]\nlocation = "{host}"\ninsecure = true\n'
        self.registries_conf.write_text(text)

    def allow_plain_http(self, host: str) -> None:
        """Mark the registry `host` (127.0.0.1:PORT) insecure: a plain `podman pull` works."""
        self.insecure.append(host)
        self._write_registries()

    def forget_registry(self, host: str) -> None:
        if host in self.insecure:
            self.insecure.remove(host)
            self._write_registries()

    def environ(self) -> dict[str, str]:
        """This process's environment with `env` on top: for a subprocess that runs podman."""
        return {**os.environ, **self.env}

    def podman(
        self, *args: str, check: bool = True, timeout: float = PODMAN_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run `podman ARGS` against this store; raises PodmanError when `check` and it fails."""
        argv = [str(PODMAN), *args]
        result = subprocess.run(
            argv,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and result.returncode != 0:
            raise PodmanError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def containers(self) -> list[str]:
        """Names of every container in the store, running or not (`podman ps -a`)."""
        out = self.podman("ps", "-a", "--format", "{{.Names}}").stdout
        return out.split()

    def image_id(self, ref: str) -> str:
        return self.podman("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()

    def reset(self) -> None:
        """Remove every container and image, so that the next test starts from nothing."""
        self.podman("rm", "--all", "--force", "--time", "0")
        self.podman("rmi", "--all", "--force")

    def cleanup(self) -> None:
        """reset(), then remove `root` (the store lives only there: nothing else to undo)."""
        with contextlib.suppress(PodmanError, subprocess.TimeoutExpired):
            self.reset()
        for mount in _mounts_under(self.root):  # a container's shm left by a killed podman
            subprocess.run(["umount", "--lazy", mount], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def _containers_conf(root: Path) -> str:
    # runc: crun refuses this machine's hybrid cgroup layout. cgroupfs: no systemd here.
    # ulimits: the sandbox cannot raise rlimits above its own, podman's defaults try to.
    # host network: the test services listen on loopback, and no CNI/netavark is needed.
    # file events/logs: no journald. lock_type file: locks under tmp_dir, not the
    # machine-wide /dev/shm/libpod_lock that every other podman on the host shares.
    return textwrap.dedent(f"""\
        [containers]
        default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
        netns = "host"
        log_driver = "k8s-file"

        [engine]
        runtime = "runc"
        cgroup_manager = "cgroupfs"
        events_logger = "file"
        events_logfile_path = "{root / "events.log"}"
        lock_type = "file"
        tmp_dir = "{root / "run" / "libpod"}"
        static_dir = "{root / "graph" / "libpod"}"
        volume_path = "{root / "graph" / "volumes"}"

        [network]
        network_config_dir = "{root / "networks"}"
        """)


def _mounts_under(root: Path) -> list[str]:
    prefix = f"{root.resolve()}/"
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point.startswith(prefix):
            mounts.append(point)
    return sorted(mounts, reverse=True)  # innermost first


def web_script(line: str, port: int | None = None, stop_after: float | None = None) -> str:
    """A service answering `line` at http://127.0.0.1:PORT/version (busybox httpd); PORT
    is `port`, or when None the container's $PORT (`podman run -e PORT=…`).

    The shell stays PID 1 and ends on SIGTERM: a bare httpd as PID 1 would ignore it.
    `stop_after` seconds: httpd is stopped then and the shell keeps running (a service whose
    process is up and whose port is closed).
    """
    listen = f"{LOOPBACK}:{port if port is not None else '$PORT'}"
    head = textwrap.dedent(f"""\
        mkdir -p /www
        echo {shlex.quote(line)} > /www/version
        httpd -f -p {listen} -h /www &
        pid=$!
        """)
    if stop_after is None:
        return head + "trap 'kill $pid; exit 0' TERM INT\nwait $pid\n"
    return head + textwrap.dedent(f"""\
        trap 'kill $pid $sleeper 2>/dev/null; exit 0' TERM INT
        sleep {stop_after} & sleeper=$!
        wait $sleeper
        kill $pid
        while :; do sleep 3600 & sleeper=$!; wait $sleeper; done
        """)


def stubborn_script(line: str) -> str:
    """A service answering `line` on $PORT whose PID 1 ignores SIGTERM, as most programs
    not written to be PID 1 do: busybox httpd exec'd with SIGTERM ignored. Stopping its
    `podman run` leaves it serving; only SIGKILL (`podman stop`'s last resort) ends it."""
    return textwrap.dedent(f"""\
        mkdir -p /www
        echo {shlex.quote(line)} > /www/version
        trap '' TERM
        exec httpd -f -p {LOOPBACK}:$PORT -h /www
        """)


def failing_script(message: str = "bad release", code: int = 3) -> str:
    """A bad release: prints `message` and exits `code` at once."""
    return f"echo {shlex.quote(message)} >&2\nexit {code}\n"


def build_image(env: ContainerEnv, repository: str, tag: str, script: str, out: Path) -> Path:
    """Build, offline, a busybox image running `script` with sh; save it as an OCI archive.

    The image is removed from the store afterwards (`podman load` it); returns `out`.
    """
    ref = f"{repository}:{tag}"
    with tempfile.TemporaryDirectory(dir=env.root / "tmp") as scratch:
        layer = Path(scratch) / "rootfs.tar"
        _write_rootfs(layer)
        entrypoint = ["/bin/busybox", "sh", "-c", script]
        env.podman(
            "import",
            "--change",
            f"ENTRYPOINT {json.dumps(entrypoint)}",
            "--change",
            "ENV PATH=/bin",
            "--change",
            f"LABEL org.opencontainers.image.version={tag}",
            str(layer),
            ref,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    env.podman("save", "--format", "oci-archive", "-o", str(out), ref)
    env.podman("rmi", ref)
    return out


def renamed_oci_archive(source: Path, name: str, out: Path) -> Path:
    """A copy of the OCI archive `source` (one image) whose index.json names its image
    `name`, as anyone can write one; `podman load` gives the image that name. Returns `out`."""
    with tarfile.open(source) as tar:
        index = json.loads(_member(tar, "index.json"))
    index["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": name}
    return _rewritten(source, out, {"index.json": json.dumps(index).encode()})


def renamed_docker_archive(
    env: ContainerEnv, images: list[tuple[Path, list[str]]], out: Path
) -> Path:
    """A docker archive (`podman save -m`) of the image of each OCI archive in `images`,
    with exactly the names given for it (RepoTags rewritten, as anyone can): `podman load`
    loads every image of it and gives each those names. Returns `out`.

    The images are loaded into `env` for the save and removed again: their names (the
    OCI archives' own) must not be in the store already.
    """
    refs = []
    for source, _ in images:
        loaded = env.podman("load", "--input", str(source)).stdout
        refs.append(loaded.strip().splitlines()[-1].split(": ", 1)[1])
    saved = out.with_name(f"{out.name}.saved")
    try:
        env.podman("save", "-m", "--format", "docker-archive", "-o", str(saved), *refs)
        env.podman("rmi", *refs)
        with tarfile.open(saved) as tar:
            entries = json.loads(_member(tar, "manifest.json"))
        assert len(entries) == len(images), entries
        for entry, (_, names) in zip(entries, images, strict=True):
            entry["RepoTags"] = names
        # `repositories`: names for docker's pre-1.10 loader; podman reads manifest.json.
        return _rewritten(
            saved, out, {"manifest.json": json.dumps(entries).encode(), "repositories": None}
        )
    finally:
        saved.unlink(missing_ok=True)


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    fh = tar.extractfile(name)
    assert fh is not None, name
    with fh:
        return fh.read()


def _rewritten(source: Path, out: Path, replace: dict[str, bytes | None]) -> Path:
    """A copy of the tar `source` at `out` with members replaced (None: left out)."""
    with tarfile.open(source) as src, tarfile.open(out, "w") as dst:
        for info in src:
            if info.name not in replace:
                dst.addfile(info, src.extractfile(info) if info.isfile() else None)
                continue
            data = replace[info.name]
            if data is not None:
                info.size = len(data)
                dst.addfile(info, io.BytesIO(data))
    return out


def _write_rootfs(layer: Path) -> None:
    """/bin/busybox and a symlink per applet, /tmp, owned by root."""
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    with tarfile.open(layer, "w") as tar:
        for name, mode in (("bin", 0o755), ("tmp", 0o1777)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(BUSYBOX, "bin/busybox", filter=_owned_by_root)
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, "busybox", 0o777
            tar.addfile(info)


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


class Registry:
    """docker-registry on 127.0.0.1:<free port>, plain HTTP, its blobs under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"{LOOPBACK}:{self.port}"
        self.url = f"http://{self.host}"
        config = root / "config.yml"
        config.write_text(
            textwrap.dedent(f"""\
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: {root / "data"}
              delete:
                enabled: true
            http:
              addr: {self.host}
              secret: test-only-not-secret
            """)
        )
        self.service = Service([str(DOCKER_REGISTRY), "serve", str(config)], root / "registry.log")

    def start(self) -> Registry:
        self.service.start()

        def ready() -> bool:
            if not self.service.running():
                raise RuntimeError(f"docker-registry exited:\n{self.service.log()[-3000:]}")
            return http_ok(f"{self.url}/v2/")

        wait_until(ready, 20, f"docker-registry on {self.host}")
        return self

    def stop(self) -> None:
        self.service.stop()

    def push(self, env: ContainerEnv, image_ref: str, name: str | None = None) -> str:
        """Push `image_ref` from `env`'s store as HOST/NAME:TAG; returns HOST/NAME@sha256:...

        NAME is `image_ref`'s path without its registry (localhost/web:v2 → web) unless given.
        """
        repo, tag = _split_ref(image_ref)
        repo = name or repo
        fd, name_of_file = tempfile.mkstemp(suffix=".digest", dir=env.root / "tmp")
        os.close(fd)
        digestfile = Path(name_of_file)
        try:
            env.podman(
                "push",
                "--tls-verify=false",
                "--digestfile",
                str(digestfile),
                image_ref,
                f"docker://{self.host}/{repo}:{tag}",
            )
            digest = digestfile.read_text().strip()
        finally:
            digestfile.unlink(missing_ok=True)
        return f"{self.host}/{repo}@{digest}"

    def tags(self, repo: str) -> list[str]:
        response = httpx.get(f"{self.url}/v2/{repo}/tags/list", timeout=5)
        response.raise_for_status()
        return list(response.json().get("tags") or [])


def _split_ref(ref: str) -> tuple[str, str]:
    """(path without its registry, tag): localhost/web:v2 → ("web", "v2")."""
    path, tag = ref, "latest"
    if ":" in ref.rsplit("/", 1)[-1]:  # a colon before the last slash is a port
        path, tag = ref.rsplit(":", 1)
    first, slash, rest = path.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        path = rest
    return path, tag


def http_answer(port: int, path: str = "/version") -> str | None:
    """What http://127.0.0.1:PORT/PATH answers (stripped), or None while nothing does."""
    try:
        response = httpx.get(f"http://{LOOPBACK}:{port}{path}", timeout=1)
    except httpx.HTTPError:
        return None
    return response.text.strip() if response.status_code == 200 else None


@pytest.fixture(scope="session")
def container_store() -> Iterator[ContainerEnv]:
    """One podman store per test session (so per xdist worker): a vfs store is slow to copy.

    A short /tmp root: conmon's attach and ctl sockets live under it (108-byte sun_path).
    """
    env = ContainerEnv(Path(tempfile.mkdtemp(prefix="podman-", dir="/tmp")))
    try:
        yield env
    finally:
        env.cleanup()


@pytest.fixture
def container_env(container_store: ContainerEnv) -> Iterator[ContainerEnv]:
    """The worker's podman store, emptied of containers and images after each test."""
    try:
        yield container_store
    finally:
        container_store.reset()


@pytest.fixture
def registry(tmp_path: Path, container_store: ContainerEnv) -> Iterator[Registry]:
    """A real docker-registry for one test, stopped by PID; marked plain HTTP in the
    worker's registries.conf for that time (pulls need no --tls-verify=false)."""
    server = Registry(tmp_path / "registry")
    container_store.allow_plain_http(server.host)
    try:
        yield server.start()
    finally:
        server.stop()
        container_store.forget_registry(server.host)


@pytest.fixture
def container_supervisord(tmp_path: Path, container_env: ContainerEnv) -> Iterator[Supervisord]:
    """A real supervisord whose environment points podman at `container_env`'s store."""
    sockdir = Path(tempfile.mkdtemp(prefix="sv-", dir="/tmp"))
    daemon = Supervisord(tmp_path / "supervisor", sockdir)
    daemon.service.env = container_env.environ()  # its programs inherit it
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(sockdir, ignore_errors=True)


def run_script(path: Path, container: str, image: str, port: int) -> Path:
    """Write a supervisor program's command: `podman run` of `image` in the foreground as
    `container`, on the host network with PORT=`port`. `--replace`: a container left by a
    `podman run` stopped mid-create is removed first; `--pull never`: a missing image is
    an error, not a pull from a registry named localhost."""
    path.write_text(
        "#!/bin/sh\n"
        f"exec {PODMAN} run --rm --replace --pull never --name {shlex.quote(container)} "
        f"--network host -e PORT={port} {shlex.quote(image)}\n"
    )
    path.chmod(0o755)
    return path

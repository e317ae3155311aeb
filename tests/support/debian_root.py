"""A clean Debian machine for tests that follow an operator's commands word for word.

`DebianRoot.create(workdir)` unpacks a debootstrapped bookworm, or another suite such as
bullseye for the agent's Python 3.9 (`--variant=minbase`, plus
`BASE_INCLUDE`: what any Debian server has beyond minbase and this test needs) into
`workdir/root`, mounts /proc, /dev (bind) and /sys in it and makes a private network
namespace with only `lo` up. `run(script)` runs a bash script there as root:
`ip netns exec NS chroot ROOT env -i … /bin/bash -euo pipefail -c SCRIPT`, so whatever it
starts (supervisord, cron, a server on 127.0.0.1:8080) can neither reach nor collide with
anything on this machine. `run(script, network=True)` skips the namespace: only for
downloads made *before* the offline part (apt-get --download-only).

Caches, under /var/cache/ansible-proxy-tests/ (each made once, in a temp name, then
renamed, under a lock): the debootstrapped tree as a tarball keyed by suite, mirror (the
Debian archive this machine's own apt sources name: no host is written here) and include
list, and whatever `cached` is asked to keep (the guide's test keeps the apt lists
and .debs of the guide's apt-get line, and a wheelhouse).

`stop()` ends, by PID, every process whose root is the tree or that lives in the
namespace, unmounts, deletes the namespace and then the tree; it never deletes a tree
that still has a mount under it (the /dev bind would take the machine's /dev with it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

CACHE_DIR = Path("/var/cache/ansible-proxy-tests")
_NUMBERS = itertools.count()  # two machines in one process get two namespaces
SUITE = "bookworm"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
# A Debian server has these beyond minbase; the guide must install everything else.
BASE_INCLUDE = ("ca-certificates",)
OPERATOR_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What a root login shell has, and nothing from the test's own environment.
OPERATOR_ENV = {
    "PATH": OPERATOR_PATH,
    "HOME": "/root",
    "USER": "root",
    "LOGNAME": "root",
    "SHELL": "/bin/bash",
    "LANG": "C.UTF-8",
}


def apt_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian archive this machine's own apt uses (no mirror is named in the repo):
    the first `main` source of the `debian` archive (not -security) in sources.list or a
    deb822 `.sources` file. RuntimeError naming the files when there is none."""
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(source.glob("*.sources")) + sorted(source.glob("*.list"))
        elif source.is_file():
            files.append(source)
    for path in files:
        for uri, suites, components in _apt_entries(path.read_text(errors="replace")):
            archive = uri.rstrip("/")
            if (
                archive.endswith("/debian")
                and "main" in components
                and any(not suite.endswith("-security") for suite in suites)
            ):
                return archive
    raise RuntimeError(
        "no Debian archive (a `main` source ending in /debian) in "
        + ", ".join(str(s) for s in sources)
        + ": debootstrap needs one"
    )


def _apt_entries(text: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """(URI, suites, components) of each entry of a one-line or deb822 sources file."""
    if any(line.startswith("Types:") for line in text.splitlines()):
        for stanza in text.split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    key_, _, value = line.partition(":")
                    fields[key_.strip()] = value.strip()
            if "deb" in fields.get("Types", "").split() and fields.get("Enabled") != "no":
                for uri in fields.get("URIs", "").split():
                    yield (
                        uri,
                        fields.get("Suites", "").split(),
                        fields.get("Components", "").split(),
                    )
        return
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()  # no [options]
        if len(words) >= 4 and words[0] == "deb":
            yield words[1], [words[2]], words[3:]


def missing_tools() -> list[str]:
    """Host programs this module needs that are not installed (empty when all are)."""
    tools = ("debootstrap", "chroot", "ip", "mount", "umount", "tar")
    return [tool for tool in tools if shutil.which(tool) is None]


def key(*parts: str) -> str:
    """A short stable name for a cache entry made from `parts`."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@contextlib.contextmanager
def cache_lock() -> Iterator[None]:
    """One builder of cache entries at a time (two test runs may start together)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with (CACHE_DIR / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached(name: str, make: Callable[[Path], None]) -> Path:
    """CACHE_DIR/name (a file or a directory), made by `make(path)` when absent; made under
    a temp name and renamed, so a failed or interrupted make leaves nothing behind."""
    path = CACHE_DIR / name
    with cache_lock():
        if not path.exists():
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            try:
                make(partial)
                partial.rename(path)
            finally:
                if partial.is_dir():
                    shutil.rmtree(partial, ignore_errors=True)
                else:
                    partial.unlink(missing_ok=True)
    return path


def base_tarball(include: tuple[str, ...] = BASE_INCLUDE, suite: str = SUITE) -> Path:
    """The debootstrapped tree of `suite` (about 220 MB, a minute or two the first time)."""
    mirror = apt_mirror()
    name = f"debian-{suite}-minbase-{key(suite, mirror, *sorted(include))}.tar"

    def make(target: Path) -> None:
        tree = CACHE_DIR / f".debootstrap-{os.getpid()}"
        try:
            subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(include)}",
                    suite,
                    str(tree),
                    mirror,
                ],
                check=True,
                capture_output=True,
                timeout=900,
            )
            _tar_create(target, tree, ".")
        finally:
            _unmount_under(tree)  # debootstrap mounts /proc and /sys while it works
            if not _mounts_under(tree):
                shutil.rmtree(tree, ignore_errors=True)

    return cached(name, make)


def _tar_create(target: Path, directory: Path, *members: str) -> None:
    subprocess.run(
        ["tar", "--numeric-owner", "-C", str(directory), "-cf", str(target), *members],
        check=True,
        capture_output=True,
        timeout=600,
    )


def _mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below `directory` in this mount namespace, deepest first."""
    prefix = str(directory.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(Path(point))
    return sorted(points, key=lambda p: len(p.parts), reverse=True)


def _unmount_under(directory: Path) -> None:
    for _ in range(3):
        points = _mounts_under(directory)
        if not points:
            return
        for point in points:
            if subprocess.run(["umount", str(point)], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


@dataclass
class BlockResult:
    """What one script printed, and how it ended."""

    script: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def describe(self) -> str:
        return (
            f"exit {self.returncode} after {self.seconds:.0f} s\n--- script\n{self.script}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


class DebianRoot:
    """An unpacked Debian tree, its mounts and its network namespace."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.root = workdir / "root"
        self.netns = f"apdeb{os.getpid()}-{next(_NUMBERS)}"
        self._mounted: list[Path] = []
        self._netns_made = False

    @classmethod
    def create(cls, workdir: Path, base: Path) -> DebianRoot:
        """Unpack `base` (a tarball of a Debian tree) and make it runnable; stop() undoes it."""
        machine = cls(workdir)
        try:
            machine.unpack(base)
            machine._mount()
            subprocess.run(["ip", "netns", "add", machine.netns], check=True, capture_output=True)
            machine._netns_made = True
            subprocess.run(
                ["ip", "netns", "exec", machine.netns, "ip", "link", "set", "lo", "up"],
                check=True,
                capture_output=True,
            )
        except BaseException:
            machine.stop()
            raise
        return machine

    def path(self, inside: str) -> Path:
        """The host path of `inside` (an absolute path on the Debian machine)."""
        return self.root / inside.lstrip("/")

    def unpack(self, tarball: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(self.root), "-xf", str(tarball)],
            check=True,
            capture_output=True,
            timeout=600,
        )

    def pack(self, target: Path, *members: str) -> None:
        """Write `members` (paths relative to /) of the tree to the tarball `target`."""
        _tar_create(target, self.root, *members)

    def _mount(self) -> None:
        for kind, source, inside in (
            ("proc", "proc", "proc"),
            ("bind", "/dev", "dev"),
            ("sysfs", "sysfs", "sys"),
        ):
            point = self.root / inside
            argv = ["mount", "--bind", source, str(point)]
            if kind != "bind":
                argv = ["mount", "-t", kind, source, str(point)]
            subprocess.run(argv, check=True, capture_output=True)
            self._mounted.append(point)

    def run(
        self,
        script: str,
        *,
        network: bool = False,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
        cwd: str = "/root",
    ) -> BlockResult:
        """Run `script` with bash -euo pipefail as root on the machine (offline unless
        `network`). Output goes to files, so daemons it starts never hold the test up."""
        variables = {**OPERATOR_ENV, **(env or {})}
        argv = [
            "chroot",
            str(self.root),
            "/usr/bin/env",
            "-i",
            f"--chdir={cwd}",
            *(f"{name}={value}" for name, value in variables.items()),
            "/bin/bash",
            "-euo",
            "pipefail",
            "-c",
            script,
        ]
        if not network:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        out_path, err_path = self.workdir / "block.out", self.workdir / "block.err"
        started = time.monotonic()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
            )
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                code = -9
        return BlockResult(
            script,
            code,
            out_path.read_text(errors="replace"),
            err_path.read_text(errors="replace") + ("\n(timed out)" if code == -9 else ""),
            time.monotonic() - started,
        )

    # -- teardown ------------------------------------------------------------------------
    def processes(self) -> list[int]:
        """PIDs running in the tree (their root is it) or in the namespace."""
        mine: set[int] = set()
        root = str(self.root.resolve())
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if os.readlink(entry / "root") == root:
                    mine.add(int(entry.name))
        if self._netns_made:
            listed = subprocess.run(
                ["ip", "netns", "pids", self.netns], capture_output=True, text=True, check=False
            )
            mine.update(int(pid) for pid in listed.stdout.split())
        mine.discard(os.getpid())
        return sorted(mine)

    def _end_processes(self) -> None:
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            pids = self.processes()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and self.processes():
                time.sleep(0.2)

    def stop(self) -> None:
        """End what runs there, unmount, delete the namespace and the tree; never raises
        (a tree that still has a mount under it is left in place, and said so)."""
        with contextlib.suppress(Exception):
            self._end_processes()
        with contextlib.suppress(Exception):
            _unmount_under(self.root)
        if self._netns_made:
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, check=False)
            self._netns_made = False
        left = _mounts_under(self.root) if self.root.exists() else []
        if left:
            print(f"debian_root: left {self.root} in place: still mounted: {left}")
            return
        shutil.rmtree(self.workdir, ignore_errors=True)

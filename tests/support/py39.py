"""The agent as a Debian 11 host runs it: the one-file agent under bullseye's python3 (3.9).

`pytest --agent-python39 tests/integration/agent` runs the agent's real-service tests with
every `ansible-proxy` command of `tests.support.agent.Agent` executed as

    chroot ROOT /usr/bin/env SHIV_ROOT=/opt/shiv /usr/bin/python3 /opt/ansible-proxy.pyz …

where ROOT is a debootstrapped bullseye (`--variant=minbase`, with python3 and
openssh-client: nothing else is installed there, no pip, no site-packages of ours) and
the .pyz is what `make dist` builds from this checkout. The test's temp directory is
bind-mounted at the same path inside ROOT, so the host layout (BIN_DIR, STORE_DIR, the
manifest, supervisord's socket) is the same files for the tests and the agent; the
bin-manager and supervisord run on this machine, on loopback, as in every other test.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.debian_root import DebianRoot, base_tarball, cached

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "packaging" / "dist" / "build.py"
SUITE = "bullseye"
# openssh-client: ssh-keygen, which checks signed releases (TRUSTED_KEYS), as on real hosts
INCLUDE = ("ca-certificates", "openssh-client", "python3")


def build_onefile(out: Path) -> Path:
    """This checkout's one-file agent for this machine's arch, copied into `out`.

    Built once per source (cached under CACHE_DIR, keyed by the files that go into it)
    and under the cache lock: pip builds a checkout in place (build/, *.egg-info), so two
    test workers building at once would trip over each other.
    """
    arch = platform.machine()
    sources = sorted(
        p
        for p in (*(ROOT / "src").rglob("*"), ROOT / "pyproject.toml", BUILD)
        if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p)
    )
    digest = hashlib.sha256()
    for path in sources:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())

    def make(target: Path) -> None:
        done = subprocess.run(
            [sys.executable, str(BUILD), "--out", str(target), "--arch", arch],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"make dist failed ({done.returncode}):\n{done.stderr[-3000:]}")

    built = cached(f"onefile-{arch}-{digest.hexdigest()[:16]}", make)
    onefile = next(built.glob(f"ansible-proxy-*-{arch}.pyz"))
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(onefile, out / onefile.name)
    return out / onefile.name


@contextmanager
def bullseye_agent(workdir: Path, shared: Path) -> Iterator[list[str]]:
    """A bullseye root with the one-file agent and `shared` bind-mounted; the command prefix."""
    onefile = build_onefile(workdir / "dist")
    machine = DebianRoot.create(workdir / "machine", base_tarball(INCLUDE, SUITE))
    try:
        inside = machine.path(str(shared))
        inside.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(shared), str(inside)], check=True)
        shutil.copy2(onefile, machine.path("/opt/ansible-proxy.pyz"))
        prefix = [
            shutil.which("chroot") or "/usr/sbin/chroot",  # the agent's env has cron's PATH
            str(machine.root),
            "/usr/bin/env",
            "SHIV_ROOT=/opt/shiv",
            "/usr/bin/python3",
            "/opt/ansible-proxy.pyz",
        ]
        version = subprocess.run(
            ["chroot", str(machine.root), "/usr/bin/python3", "--version"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert version.stdout.startswith("Python 3.9."), version.stdout
        yield prefix
    finally:
        machine.stop()

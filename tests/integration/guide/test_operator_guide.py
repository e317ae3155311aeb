"""docs/operator-guide.md, followed word for word on a clean Debian 12 machine.

What runs: every ```sh block of the guide, in order, each as `bash -euo pipefail -c BLOCK`,
as root, with a root login shell's environment and /root as working directory. Blocks
fenced ```text, ```ini, ```json or ```yaml are read, not run; any other fence (```bash,
```console, a bare ```) fails the test, so no command block is skipped by mistake. After
each stage the test checks what an operator would (STEPS: each names a phrase found in
exactly one block, and every step must be used).

The machine (tests/support/debian_root.py): `debootstrap --variant=minbase
--include=ca-certificates bookworm`, cached as a tarball in /var/cache/ansible-proxy-tests/,
unpacked into a temp dir per run, with /proc, /dev (bind) and /sys mounted; the blocks run
through chroot inside a private network namespace with only `lo` up, so the guide's
bin-manager on 127.0.0.1:8080 and its service on :9000 collide with nothing, and nothing
the guide runs reaches the network. Everything it started is ended by PID and everything
unmounted and deleted at the end, also on failure.

Offline, with every download made first:
- apt: the test runs the guide's own `apt-get install` command with `--download-only`
  inside the machine with this machine's network (after `apt-get update`) and caches the
  lists and .debs, keyed by that command; offline, the guide's `apt-get update` cannot
  reach the mirror (a warning, exit 0) and its `apt-get install` installs those .debs.
- pip: the project's dependencies (with the server extra), its build requirements and
  pip are built on this machine into a wheelhouse (cached, keyed by pyproject.toml's
  requirements and the Python version, which must be 3.11 like bookworm's) copied to
  /wheelhouse; the blocks get
  `PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheelhouse` in their environment, which pip and pipx
  read, so the guide's text stays what an operator types. The project's own wheel is the
  one the guide builds.

Decisions, where the guide cannot be run literally:
- Its `git clone` is a ```text line (no URL, no network): the test copies this working
  tree's files (tracked and untracked, not ignored) to /usr/local/src/ansible-proxy.
- For "Upgrading ansible-proxy itself" (`git pull`, a prose step) the test bumps
  `__version__` in that copy to `<version>.post1`, so the upgrade is a real one.
- Before each restore the test breaks what the restore brings back: the bin-manager's data
  dir is emptied and the server restarted (a new machine set up by sections 1 to 3: an
  empty database, the same token); the host loses /etc/ansible-proxy, /var/lib/ansible-proxy
  and /usr/local/bin/hello.
- Once cron runs the agent, each block that runs `ansible-proxy run` or `check` by hand
  (or reinstalls the package) starts between seconds 3 and 30 of a minute with no
  ansible-proxy process running, so cron's tick (at second 0, about a second when there is
  nothing to do) never takes that block's work first; the guide says what an operator sees
  when it does. The cron tick itself is proven by the v2 block, which runs no agent: it
  publishes and waits for the log line that only cron's tick can write.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ansible_proxy import __version__
from tests.support.debian_root import (
    BlockResult,
    DebianRoot,
    base_tarball,
    cached,
    key,
    missing_tools,
)

REPO = Path(__file__).resolve().parents[3]
GUIDE = REPO / "docs" / "operator-guide.md"
CHECKOUT = "/usr/local/src/ansible-proxy"
RUN_FENCE = "sh"
READ_FENCES = {"text", "ini", "json", "yaml"}
BLOCK_ENV = {
    "DEBIAN_FRONTEND": "noninteractive",
    "PIP_NO_INDEX": "1",
    "PIP_FIND_LINKS": "/wheelhouse",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}
HEALTHZ = '{"code":0,"message":"success","data":{"status":"ok"}}'
NEW_VERSION = f"{__version__}.post1"
BY_HAND = re.compile(
    r"^\s*(ansible-proxy (run|check)\b|PIPX_HOME=\S+ PIPX_BIN_DIR=\S+ pipx )", re.M
)


# -- the guide's blocks -----------------------------------------------------------------
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^`\s]*)\s*$")


def guide_blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of every fenced block, bodies dedented by their fence's indent."""
    blocks: list[tuple[str, str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if not opening:
            continue
        indent, body = len(opening["indent"]), []
        while not re.match(r"^[ \t]*```\s*$", lines[index]):
            body.append(lines[index][indent:])
            index += 1
        index += 1
        blocks.append((opening["info"], "\n".join(body) + "\n"))
    return blocks


def apt_install_command(block: str) -> str:
    """The block's `apt-get install …` command, continuation lines joined."""
    joined = block.replace("\\\n", " ")
    (line,) = [row for row in joined.splitlines() if row.lstrip().startswith("apt-get install")]
    return " ".join(line.split())


# -- the machine and its offline supplies ------------------------------------------------
def wheelhouse() -> Path:
    """Wheels of the project's dependencies, build requirements and pip (cached)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    requirements = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["server"],  # the guide's host: [server]
        *project["build-system"]["requires"],
        "pip",
    ]
    python = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert python == "cp311", "the wheelhouse must match bookworm's Python 3.11"

    def make(target: Path) -> None:
        target.mkdir()
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(target), *requirements],
            check=True,
            capture_output=True,
            timeout=900,
        )

    return cached(f"wheelhouse-{python}-{key(*requirements)}", make)


def apt_supplies(machine: DebianRoot, base: Path, command: str) -> None:
    """The lists and .debs the guide's apt-get command needs, downloaded with this
    machine's network (cached) and unpacked into the machine."""
    download = command.replace("apt-get install", "apt-get install --download-only", 1)

    def make(target: Path) -> None:
        result = machine.run(
            f"apt-get update -q\n{download}\n", network=True, env=BLOCK_ENV, timeout=900
        )
        assert result.returncode == 0, result.describe()
        machine.pack(target, "var/lib/apt/lists", "var/cache/apt/archives")

    made = str(base.stat().st_mtime_ns)  # a remade base may not match older lists
    machine.unpack(cached(f"apt-{key(base.name, made, command)}.tar", make))


def copy_checkout(machine: DebianRoot) -> None:
    """What `git clone` would give: this working tree's files, tracked and untracked."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    )
    target = machine.path(CHECKOUT)
    for name in sorted(set(listed.stdout.decode().split("\0")) - {""}):
        source = REPO / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[DebianRoot]:
    """A clean Debian 12 with the checkout, the wheelhouse and the guide's apt downloads."""
    assert os.geteuid() == 0, "needs root: debootstrap, chroot, mounts, a network namespace"
    missing = missing_tools()
    assert not missing, f"missing {missing}: scripts/install-system-deps installs them"
    base = base_tarball()
    wheels = wheelhouse()
    blocks = guide_blocks(GUIDE.read_text())
    command = apt_install_command(next(body for info, body in blocks if "apt-get" in body))
    debian = DebianRoot.create(tmp_path / "machine", base)
    try:
        apt_supplies(debian, base, command)
        shutil.copytree(wheels, debian.path("/wheelhouse"))
        copy_checkout(debian)
        yield debian
    finally:
        debian.stop()


# -- what an operator checks after each stage --------------------------------------------
@dataclass
class Guide:
    """The machine as the guide leaves it, and what the test learned on the way."""

    machine: DebianRoot
    cron_running: bool = False
    shas: dict[str, str] = field(default_factory=dict)

    def sh(self, script: str) -> str:
        """Run a check on the machine (offline); its stdout. Fails the test if it fails."""
        result = self.machine.run(script, env=BLOCK_ENV, timeout=120)
        assert result.returncode == 0, result.describe()
        return result.stdout

    def manifest_entry(self) -> dict[str, Any]:
        doc = json.loads(self.sh("cat /etc/ansible-proxy/bin-manifests.json"))
        (entry,) = doc["binaries"]
        assert isinstance(entry, dict)
        return entry

    def sha(self, name: str) -> str:
        if name not in self.shas:
            self.shas[name] = self.sh(f"sha256sum /root/{name}").split()[0]
        return self.shas[name]

    def between_ticks(self) -> None:
        """Wait for seconds 3-30 of a minute with no ansible-proxy process running."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if 3 <= time.localtime().tm_sec <= 30 and not self.agent_running():
                return
            time.sleep(0.5)
        raise TimeoutError("an ansible-proxy process ran for three minutes")

    def agent_running(self) -> bool:
        for pid in self.machine.processes():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(arg.endswith(b"/ansible-proxy") for arg in argv[:2]):
                return True
        return False


def _json_after(text: str, opener: str) -> Any:
    """The JSON document that starts at the first line beginning with `opener`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(opener))
    return json.loads("\n".join(lines[start:]))


def _releases_listed(text: str) -> dict[str, bool]:
    """sha256 → latest, from the table of `bin-manager list releases`."""
    rows = re.findall(r"^([0-9a-f]{64}) +x86_64 +\d+ +\S+ +(latest|-)$", text, re.M)
    return {sha: latest == "latest" for sha, latest in rows}


def _installed(guide: Guide, result: BlockResult) -> None:
    assert guide.sh("command -v supervisord pipx sqlite3 curl crontab logrotate").count("\n") == 6


def _built_and_linked(guide: Guide, result: BlockResult) -> None:
    for command in ("ansible-proxy", "bin-manager"):
        target = guide.sh(f"readlink /usr/local/bin/{command}").strip()
        assert target == f"/opt/pipx/venvs/ansible-proxy/bin/{command}"
    assert f"bin-manager {__version__}" in result.stdout
    wheel = f"ansible_proxy-{__version__}-py3-none-any.whl"
    assert guide.sh(f"ls {CHECKOUT}/dist").strip() == wheel


def _supervisor_up(guide: Guide, result: BlockResult) -> None:
    guide.sh("test -S /var/run/supervisor.sock")


def _token_made(guide: Guide, result: BlockResult) -> None:
    assert guide.sh("stat -c '%a %U:%G' /etc/bin-manager.token") == "640 root:bin-manager\n"
    assert guide.sh("stat -c '%a %U' /var/lib/bin-manager") == "700 bin-manager\n"
    assert len(guide.sh("cat /etc/bin-manager.token").strip()) == 44


def _bin_manager_serving(guide: Guide, result: BlockResult) -> None:
    assert HEALTHZ in result.stdout
    assert re.search(r"^bin-manager +RUNNING", result.stdout, re.M), result.stdout
    pid, uid = guide.sh("supervisorctl pid bin-manager"), guide.sh("id -u bin-manager")
    status = Path(f"/proc/{int(pid)}/status").read_text()  # no PID namespace: the same pid
    assert re.search(rf"^Uid:\s+{int(uid)}\s", status, re.M), status
    assert {"artifacts", "bin-manager.sqlite3"} <= set(guide.sh("ls /var/lib/bin-manager").split())


def _token_from_a_file(guide: Guide, result: BlockResult) -> None:
    assert result.stdout.splitlines() == ["exit 2", "BIN  LATEST  RELEASES  NODES  PAUSED  CREATED"]
    assert result.stderr.startswith("bin-manager: error: the bin-manager refused the admin token")
    assert "set BIN_MANAGER_ADMIN_TOKEN, BIN_MANAGER_ADMIN_TOKEN_FILE or --admin-token-file" in (
        result.stderr
    )


def _v1_published(guide: Guide, result: BlockResult) -> None:
    assert result.stdout.strip() == guide.sha("hello-v1")


def _rollout_policy_set(guide: Guide, result: BlockResult) -> None:
    assert result.stdout == (
        "hello: rollout policy --canary 1 --waves 100% --bake 20 --max-failures 1 "
        "(from the next publish)\n"
    )


def _fatal_until_installed(guide: Guide, result: BlockResult) -> None:
    assert "FATAL" in result.stdout, result.stdout
    assert "can't find command '/usr/local/bin/hello'" in result.stdout
    guide.sh("logrotate -d /etc/logrotate.d/ansible-proxy")
    assert guide.sh("stat -c %a /etc/ansible-proxy/config") == "600\n"


def _first_install(guide: Guide, result: BlockResult) -> None:
    v1 = guide.sha("hello-v1")
    assert "hello v1\n" in result.stdout
    assert re.search(r"^hello +RUNNING", result.stdout, re.M), result.stdout
    assert re.search(rf"^hello +hello +{v1[:12]} +{v1[:12]} +ok", result.stdout, re.M)
    assert f"hello@{v1[:12]}: upgraded and healthy" in result.stderr
    entry = guide.manifest_entry()
    assert entry["version"] == v1
    assert entry["history"] == {v1: "ok"}
    assert guide.sh(f"sha256sum /var/lib/ansible-proxy/store/hello/{v1}").startswith(v1)


def _cron_installed(guide: Guide, result: BlockResult) -> None:
    assert "\n* * * * * root ansible-proxy run >/dev/null\n" in result.stdout
    assert "\n* * * * * root ansible-proxy check >/dev/null\n" in result.stdout
    assert "\nPATH=/usr/local/sbin:/usr/local/bin:" in result.stdout
    guide.cron_running = True


def _v2_by_cron(guide: Guide, result: BlockResult) -> None:
    assert not BY_HAND.search(result.script), "the cron block must not run the agent itself"
    v2 = guide.sha("hello-v2")
    assert f"hello@{v2[:12]}: upgraded and healthy" in result.stdout
    assert result.stdout.endswith("hello v2\n")
    assert guide.manifest_entry()["version"] == v2


def _inspector_healthy(guide: Guide, result: BlockResult) -> None:
    assert re.search(r"^hello +\S+ +healthy: .* healthy +none$", result.stdout, re.M), result.stdout
    report = _json_after(result.stdout, "{")
    assert report["exitCode"] == 0
    assert [(s["service"], s["outcome"]) for s in report["services"]] == [("hello", "healthy")]


def _v3_rolled_back(guide: Guide, result: BlockResult) -> None:
    v2, v3 = guide.sha("hello-v2"), guide.sha("hello-v3")
    assert "ansible-proxy run: exit 1\n" in result.stdout
    assert re.search(
        rf"^ansible-proxy: hello: hello@{v3[:12]}: .*; rolled back$", result.stderr, re.M
    )
    assert "hello v2\n" in result.stdout
    assert re.search(rf"^hello +hello +{v2[:12]} +{v3[:12]} +err", result.stdout, re.M)
    entry = guide.manifest_entry()
    assert entry["version"] == v2
    assert entry["history"][v3] == "err"


def _v3_halted(guide: Guide, result: BlockResult) -> None:
    """The default staged rollout halted at its canary and reverted the fleet to v2."""
    v2, v3 = guide.sha("hello-v2"), guide.sha("hello-v3")
    assert re.search(
        rf"^x86_64: halted and reverted: {v3[:12]} \(previous {v2[:12]}\)", result.stdout, re.M
    ), result.stdout
    assert "1 of 1 nodes of the canary failed" in result.stdout


def _pinned(guide: Guide, result: BlockResult) -> None:
    assert result.stdout == f"hello x86_64: latest is now {guide.sha('hello-v2')}\n"


def _fixed_and_deleted(guide: Guide, result: BlockResult) -> None:
    v3, v4 = guide.sha("hello-v3"), guide.sha("hello-v4")
    assert "hello v4\n" in result.stdout
    assert guide.manifest_entry()["version"] == v4
    assert f"deleted hello x86_64 release {v3}" in result.stdout
    latest = _releases_listed(result.stdout)
    assert latest == {v4: True, guide.sha("hello-v2"): False, guide.sha("hello-v1"): False}


def _held_and_released(guide: Guide, result: BlockResult) -> None:
    assert re.search(r"^hello .* disk swap, ticket 4711$", result.stdout, re.M), result.stdout
    assert "stopped" in result.stdout
    assert not guide.manifest_entry().get("hold")
    assert re.search(r"^hello +RUNNING", guide.sh("supervisorctl status hello"), re.M)


def _new_version_before_upgrade(guide: Guide) -> None:
    init = guide.machine.path(f"{CHECKOUT}/src/ansible_proxy/__init__.py")
    text = init.read_text()
    assert f'__version__ = "{__version__}"' in text
    init.write_text(text.replace(__version__, NEW_VERSION))


def _upgraded(guide: Guide, result: BlockResult) -> None:
    assert result.stdout.endswith(f"{NEW_VERSION}\n")
    assert HEALTHZ in result.stdout
    assert guide.sh("bin-manager --version") == f"bin-manager {NEW_VERSION}\n"
    cron = guide.sh("cat /etc/cron.d/ansible-proxy")
    assert "\n* * * * * root ansible-proxy run >/dev/null\n" in cron


def _bin_manager_backed_up(guide: Guide, result: BlockResult) -> None:
    listed = guide.sh("tar -tzf /var/backups/ansible-proxy/bin-manager.tar.gz").split()
    for sha in (guide.sha("hello-v1"), guide.sha("hello-v2"), guide.sha("hello-v4")):
        assert f"bin-manager/artifacts/{sha[:2]}/{sha}" in listed
    assert {"bin-manager/bin-manager.sqlite3", "bin-manager/bin-manager.token"} <= set(listed)


def _bin_manager_lost(guide: Guide) -> None:
    """A new machine set up by sections 1 to 3: an empty database, the same token."""
    guide.sh(
        "supervisorctl stop bin-manager\n"
        "find /var/lib/bin-manager -mindepth 1 -delete\n"
        "supervisorctl start bin-manager\n"
        "curl -s --retry 10 --retry-connrefused --retry-delay 1 http://127.0.0.1:8080/healthz\n"
        "! bin-manager list releases hello --admin-token-file /etc/bin-manager.token\n"
    )


def _bin_manager_restored(guide: Guide, result: BlockResult) -> None:
    assert HEALTHZ in result.stdout
    v4 = guide.sha("hello-v4")
    listed = set(_releases_listed(result.stdout))
    assert listed == {guide.sha(f"hello-v{n}") for n in (1, 2, 4)}
    url = f"http://127.0.0.1:8080/api/v1/download/hello?sha256={v4}"
    assert guide.sh(f"curl -sf '{url}' | sha256sum").startswith(v4)
    assert guide.sh("stat -c %U /var/lib/bin-manager/bin-manager.sqlite3") == "bin-manager\n"


def _host_backed_up(guide: Guide, result: BlockResult) -> None:
    listed = guide.sh('tar -tzf "/var/backups/ansible-proxy/host-$(hostname).tar.gz"').split()
    v4 = guide.sha("hello-v4")
    for name in (
        "etc/ansible-proxy/bin-manifests.json",
        "etc/ansible-proxy/config",
        f"var/lib/ansible-proxy/store/hello/{v4}",
        "etc/supervisor/conf.d/hello.conf",
        "etc/cron.d/ansible-proxy",
    ):
        assert name in listed, name


def _host_lost(guide: Guide) -> None:
    guide.sh("rm -rf /etc/ansible-proxy /var/lib/ansible-proxy /usr/local/bin/hello")


def _host_restored(guide: Guide, result: BlockResult) -> None:
    v4 = guide.sha("hello-v4")
    assert result.stdout.endswith("hello v4\n")
    assert re.search(rf"^hello +hello +{v4[:12]} ", result.stdout, re.M)
    assert guide.sh("sha256sum /usr/local/bin/hello").startswith(v4)
    log = guide.sh("cat /var/log/ansible-proxy.log")
    assert f"hello@{v4[:12]}: BIN_DIR does not hold the recorded version: restoring" in log


def _logs_shown(guide: Guide, result: BlockResult) -> None:
    assert '"route"' in result.stdout  # the bin-manager's access log
    assert {"bin-manager.log", "hello.log", "supervisord.log"} <= set(result.stdout.split())


def _package_removed(guide: Guide, result: BlockResult) -> None:
    guide.sh("! command -v ansible-proxy && ! command -v bin-manager")
    guide.sh("! curl -s http://127.0.0.1:8080/healthz")
    guide.sh(f"test ! -e /opt/pipx && test ! -e {CHECKOUT} && test ! -e /etc/ansible-proxy")
    assert guide.sh("curl -s http://127.0.0.1:9000/") == "hello v4\n"  # services keep running


def _data_removed(guide: Guide, result: BlockResult) -> None:
    guide.sh("test ! -e /var/lib/bin-manager && test ! -e /etc/bin-manager.token")
    guide.sh("! id bin-manager")


def _nothing_left(guide: Guide, result: BlockResult) -> None:
    assert result.stdout.endswith("hello: removed process group\n")  # and ls -A: nothing
    assert guide.sh("ls -A /usr/local/bin") == ""
    assert guide.sh("supervisorctl status") == ""
    names = set()
    for pid in guide.machine.processes():
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"ansible-proxy" not in argv and "cron" in _ancestors(pid):
            continue  # Debian's own daily jobs (run-parts, apt-compat, ...) may be under way
        names.add(comm)
    assert names <= {"supervisord", "cron"}, names


def _ancestors(pid: int) -> list[str]:
    """The command names of `pid`'s parents, nearest first."""
    names: list[str] = []
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rpartition(")")[2].split()[1])
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
        except (OSError, ValueError, IndexError):
            break
    return names


@dataclass(frozen=True)
class Step:
    """A phrase found in exactly one block, what to do just before it, what to check after."""

    phrase: str
    check: Callable[[Guide, BlockResult], None]
    before: Callable[[Guide], None] | None = None
    timeout: float = 300


STEPS = [
    Step("apt-get install", _installed, timeout=900),
    Step('pipx install "$wheel[server]"', _built_and_linked, timeout=900),
    Step("service supervisor start", _supervisor_up),
    Step("useradd --system", _token_made),
    Step("[program:bin-manager]", _bin_manager_serving),
    Step("BIN_MANAGER_ADMIN_TOKEN_FILE=/etc", _token_from_a_file),
    Step("--name hello /root/hello-v1", _v1_published),
    Step("bin-manager rollout set", _rollout_policy_set),
    Step("[program:hello]", _fatal_until_installed),
    Step("ansible-proxy run -v", _first_install),
    Step("ansible-proxy install-cron\ncat", _cron_installed),
    Step("waiting for cron's next tick", _v2_by_cron),
    Step("ansible-proxy check --json", _inspector_healthy),
    Step("/root/hello-v3)", _v3_rolled_back),
    Step("sleep 3\nbin-manager rollout status", _v3_halted),
    Step("pin --admin-token-file", _pinned),
    Step("delete-release", _fixed_and_deleted),
    Step("ansible-proxy hold", _held_and_released),
    Step("pipx install --force", _upgraded, before=_new_version_before_upgrade, timeout=900),
    Step(".backup", _bin_manager_backed_up),
    Step("bin-manager.tar.gz -C /var/lib", _bin_manager_restored, before=_bin_manager_lost),
    Step('tar -czf "/var/backups/ansible-proxy/host-', _host_backed_up),
    Step('tar -xzf "/var/backups/ansible-proxy/host-', _host_restored, before=_host_lost),
    Step("supervisorctl tail bin-manager", _logs_shown),
    Step("pipx uninstall", _package_removed),
    Step("userdel bin-manager", _data_removed),
    Step("ls -A /usr/local/bin", _nothing_left),
]


def test_every_block_is_run_or_read() -> None:
    """Only ```sh blocks run; anything else must be one of the read-only fences."""
    blocks = guide_blocks(GUIDE.read_text())
    fences = {info for info, _ in blocks}
    assert fences <= {RUN_FENCE, *READ_FENCES}, fences - {RUN_FENCE, *READ_FENCES}
    runnable = [body for info, body in blocks if info == RUN_FENCE]
    for step in STEPS:
        found = [body for body in runnable if step.phrase in body]
        assert len(found) == 1, f"{step.phrase!r} is in {len(found)} runnable blocks"


@pytest.mark.timeout(1800)
def test_the_guide_runs_on_a_clean_debian_12(machine: DebianRoot) -> None:
    guide = Guide(machine)
    runnable = [body for info, body in guide_blocks(GUIDE.read_text()) if info == RUN_FENCE]
    used = set()
    for number, block in enumerate(runnable, start=1):
        steps = [step for step in STEPS if step.phrase in block]
        assert len(steps) <= 1, f"block {number} matches {[s.phrase for s in steps]}"
        step = steps[0] if steps else None
        if guide.cron_running and BY_HAND.search(block):
            guide.between_ticks()
        if step and step.before:
            step.before(guide)
        result = machine.run(block, env=BLOCK_ENV, timeout=step.timeout if step else 300)
        print(f"guide block {number}: {result.seconds:.1f} s")  # shown with -s or on failure
        assert result.returncode == 0, f"guide block {number}: {result.describe()}"
        if step:
            step.check(guide, result)
            used.add(step.phrase)
    assert used == {step.phrase for step in STEPS}

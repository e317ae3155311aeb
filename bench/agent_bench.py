"""Issue 3: `ansible-proxy run` against shell baselines, on the real bin-manager.

No-op tick: 20 managed binaries, all current, against bench/noop_tick.sh (curl + jq).
Download: a 256 MiB release, downloaded and verified, against `curl -s URL | sha256sum`.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.py39 import build_onefile
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

from bench.harness import (
    MIB,
    VENV_BIN,
    Workspace,
    env_with,
    note,
    report,
    sha256_file,
    timed,
    write_program,
)

ARCH = "x86_64"
N_BINS = 20
NOOP_RUNS = 10
DOWNLOAD_RUNS = 5
BIG_SIZE = 256 * MIB
BIG_BIN = "bench-big"
NODE = "bench-node"
SHELL_TICK = Path(__file__).parent / "noop_tick.sh"
AGENT = VENV_BIN / "ansible-proxy"
HOST_PYTHON = "/usr/bin/python3"  # Debian's: no site-packages of ours


@dataclass(frozen=True)
class Run:
    seconds: float
    returncode: int
    peak_rss_kib: int


# Peak RSS through wait4 counts the image a child was forked from (the kernel folds the
# old mm's high-water mark in at exec), so children are forked by this tiny launcher
# (`python -S`, about 5 MB), not by the benchmark's own 40+ MB process. It also times
# the child from fork to reap, leaving its own start-up out of the figure.
_LAUNCHER = """\
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    out.write(f"{seconds} {os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_child(argv: Sequence[str], env: Mapping[str, str], log: Path, timeout: float) -> Run:
    """Run one child to completion: its wall time, exit code and own peak RSS."""
    result = log.with_suffix(".result")
    launcher = [str(VENV_BIN / "python"), "-S", "-c", _LAUNCHER, str(result), *argv]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            launcher,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # a timeout ends the child too, by process group
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RuntimeError(f"{argv[0]} did not finish in {timeout}s") from None
    seconds, returncode, rss = result.read_text().split()
    result.unlink()
    return Run(float(seconds), int(returncode), int(rss))


def manifest_entry(name: str, sha: str) -> dict[str, object]:
    """A binary as the operator's manifest holds it once installed (original design fields)."""
    return {
        "serviceName": name,
        "binaryName": name,
        "version": sha,
        "previousVersion": "",
        "history": {sha: "ok"},
        "upgradePath": {},
    }


def write_manifest(path: Path, entries: list[dict[str, object]]) -> None:
    path.write_text(json.dumps({"binaries": entries, "nodeInfo": {}}, indent=2) + "\n")


def versions(path: Path) -> dict[str, str]:
    binaries: list[dict[str, str]] = json.loads(path.read_text())["binaries"]
    return {entry["binaryName"]: entry["version"] for entry in binaries}


class AgentHost:
    """One host's agent setup in the workspace: dirs, manifest, config file, env."""

    def __init__(self, ws: Workspace, manager: BinManager) -> None:
        self.ws = ws
        self.bin_dir = ws.path("host", "bin")
        self.manifest = ws.root / "host" / "bin-manifests.json"
        self.log = ws.path("logs") / "agent-runs.log"
        config = ws.root / "host" / "config"
        config.write_text("# all settings come from the environment\n")
        self.command = [str(AGENT)]  # or the one-file agent under the host's python3
        self.env = env_with(
            ENROLMENT_TOKEN=manager.enrolment_token or "",
            NODE_TOKEN_FILE=str(ws.root / "host" / "node-token"),
            ANSIBLE_PROXY_CONFIG=str(config),
            BIN_MANAGER_API=manager.api,
            BIN_DIR=str(self.bin_dir),
            BIN_MANIFESTS=str(self.manifest),
            LOG_FILE=str(ws.root / "host" / "ansible-proxy.log"),
            LOCK_DIR=str(ws.path("host", "locks")),
            STORE_DIR=str(ws.path("host", "store")),
            NODE_NAME=NODE,
            WATCH_SECONDS="1",
        )

    def agent(self) -> Run:
        return run_child([*self.command, "run"], self.env, self.log, timeout=120)

    def shell(self) -> Run:
        return run_child([str(SHELL_TICK)], self.env, self.log, timeout=60)

    def expect(self, run: Run, what: str) -> None:
        if run.returncode != 0:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{what} exited {run.returncode}:\n{tail}")


def noop_ticks(host: AgentHost) -> tuple[float, float, int]:
    """Median agent and shell seconds over NOOP_RUNS interleaved ticks, and the peak RSS."""
    before = versions(host.manifest)
    host.expect(host.agent(), "warm-up agent tick")  # registers the node, fills nodeInfo
    host.expect(host.shell(), "warm-up shell tick")
    agent: list[Run] = []
    shell: list[Run] = []
    for _ in range(NOOP_RUNS):
        agent.append(host.agent())
        shell.append(host.shell())
    for run in agent:
        host.expect(run, "no-op agent tick")
    for run in shell:
        host.expect(run, "no-op shell tick")
    if versions(host.manifest) != before:
        raise RuntimeError("a no-op tick changed the manifest's versions")
    return (
        statistics.median(r.seconds for r in agent),
        statistics.median(r.seconds for r in shell),
        max(r.peak_rss_kib for r in agent),
    )


def curl_sha256sum_seconds(url: str, expected: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", 'curl -s "$0" | sha256sum', url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seconds = time.perf_counter() - start
    if done.stdout.split()[0] != expected:
        raise RuntimeError(f"curl | sha256sum of {url}: {done.stdout.strip()}")
    return seconds


def run() -> list[str]:
    """Run the issue-3 benchmark; returns the printed lines."""
    if not AGENT.exists():
        raise RuntimeError(f"{AGENT} is not installed")
    lines: list[str] = []
    with Workspace("agent") as ws:
        manager = ws.track(BinManager(ws.path("bin-manager"))).start()
        host = AgentHost(ws, manager)
        programs: dict[str, Path] = {}
        entries: list[dict[str, object]] = []
        for i in range(N_BINS):
            name = f"svc{i:02d}"
            path = host.bin_dir / name
            sha = write_program(path, name)
            manager.publish(name, path)
            entries.append(manifest_entry(name, sha))
            programs[name] = path
        big_v1 = host.bin_dir / BIG_BIN
        write_program(big_v1, "big v1")
        manager.publish(BIG_BIN, big_v1)
        programs[BIG_BIN] = big_v1
        write_manifest(host.manifest, entries)
        sv_dir = ws.path("supervisor")
        supervisord = ws.track(Supervisord(sv_dir, sv_dir, programs, inet_http=False)).start()
        supervisord.wait_all_running()
        host.env["SUPERVISOR_URL"] = supervisord.socket_url

        note(f"no-op ticks: {NOOP_RUNS} agent runs, {NOOP_RUNS} shell runs")
        agent_s, shell_s, rss_kib = noop_ticks(host)
        lines.append(report("agent_noop_tick_vs_shell", agent_s / shell_s))
        lines.append(report("agent_noop_tick_peak_rss_mb", rss_kib / 1024, 1))
        lines.append(report("agent_noop_tick_ms", agent_s * 1000, 1))
        lines.append(report("shell_noop_tick_ms", shell_s * 1000, 1))
        lines += signed_noop_ticks(ws, host)
        lines += python_baseline(host.log)
        lines += onefile_noop_ticks(ws, host)

        lines += upgrade_big(ws, manager, host, supervisord)
    return lines


def signed_noop_ticks(ws: Workspace, host: AgentHost) -> list[str]:
    """The same no-op ticks with TRUSTED_KEYS set (docs/security.md): signatures are fetched
    only for a release about to be installed, so a no-op tick only reads the keys file."""
    note("no-op ticks with TRUSTED_KEYS set")
    key = ws.path("keys") / "publisher"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(key)],
        check=True,
        timeout=60,
    )
    trusted = ws.path("keys") / "trusted_keys"
    trusted.write_text(f"bench {key.with_suffix('.pub').read_text()}")
    host.env["TRUSTED_KEYS"] = str(trusted)
    try:
        agent_s, shell_s, _ = noop_ticks(host)
    finally:
        del host.env["TRUSTED_KEYS"]
    return [report("agent_noop_tick_signed_vs_shell", agent_s / shell_s)]


def onefile_noop_ticks(ws: Workspace, host: AgentHost) -> list[str]:
    """The same no-op ticks by what hosts run: `make dist`'s file under /usr/bin/python3."""
    note("no-op ticks of the one-file agent (building it)")
    onefile = build_onefile(ws.path("dist"))
    host.command = [HOST_PYTHON, str(onefile)]
    host.env["SHIV_ROOT"] = str(ws.path("shiv"))
    try:
        agent_s, shell_s, rss_kib = noop_ticks(host)
    finally:
        host.command = [str(AGENT)]
    return [
        report("agent_onefile_noop_tick_vs_shell", agent_s / shell_s),
        report("agent_onefile_noop_tick_peak_rss_mb", rss_kib / 1024, 1),
        report("agent_onefile_mb", onefile.stat().st_size / 1e6, 2),
    ]


def upgrade_big(ws: Workspace, manager: BinManager, host: AgentHost, sup: Supervisord) -> list[str]:
    """The real CLI upgrading a supervised 256 MiB binary (restart + WATCH_SECONDS=1 included)."""
    big = ws.path("releases") / BIG_BIN
    write_program(big, "big v2", BIG_SIZE)
    sha = manager.publish(BIG_BIN, big, timeout=120)
    entries: list[dict[str, object]] = json.loads(host.manifest.read_text())["binaries"]
    entries.append(manifest_entry(BIG_BIN, sha256_file(host.bin_dir / BIG_BIN)))
    write_manifest(host.manifest, entries)
    pid_before = sup.pid(BIG_BIN)
    note("the agent upgrades a supervised 256 MiB binary")
    run = host.agent()
    host.expect(run, "agent upgrade tick")
    if sha256_file(host.bin_dir / BIG_BIN) != sha or versions(host.manifest)[BIG_BIN] != sha:
        raise RuntimeError("the agent's upgrade tick did not install the 256 MiB release")
    if sup.pid(BIG_BIN) == pid_before:
        raise RuntimeError("the agent's upgrade tick did not restart the program")
    return [
        report("agent_upgrade_256mib_tick_s", run.seconds),
        report("agent_upgrade_peak_rss_mb", run.peak_rss_kib / 1024, 1),
        *download_vs_curl(ws, manager, sha),
    ]


def agent_fetch_seconds(url: str, sha: str, part: Path) -> float:
    """The agent's download + verify function, timed inside a fresh process."""
    argv = [str(VENV_BIN / "python"), "-m", "bench.agent_download", url, sha, str(part)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    return float(done.stdout.strip())


def download_vs_curl(ws: Workspace, manager: BinManager, sha: str) -> list[str]:
    """Median of DOWNLOAD_RUNS interleaved runs of each, after one warm-up of each."""
    url = f"{manager.api}/download/{BIG_BIN}?sha256={sha}&arch={ARCH}"
    part = ws.path("fetch") / f".{sha}.part"
    agent_fetch_seconds(url, sha, part)
    curl_sha256sum_seconds(url, sha)
    agent: list[float] = []
    curl: list[float] = []
    for _ in range(DOWNLOAD_RUNS):
        agent.append(agent_fetch_seconds(url, sha, part))
        curl.append(curl_sha256sum_seconds(url, sha))
    agent_s, curl_s = statistics.median(agent), statistics.median(curl)
    return [
        report("agent_download_vs_curl_sha256sum", agent_s / curl_s),
        report("agent_download_256mib_s", agent_s),
        report("curl_sha256sum_256mib_s", curl_s),
        # What bounds each side: coreutils hashing, and the write + fsync into the store.
        report("coreutils_sha256sum_256mib_s", sha256sum_seconds(ws.root / "releases" / BIG_BIN)),
        report("write_fsync_256mib_s", write_fsync_seconds(ws.path("fetch") / "fsync-probe")),
    ]


def sha256sum_seconds(path: Path) -> float:
    """coreutils sha256sum over a file already in the page cache."""
    argv = ["sha256sum", str(path)]
    return timed(lambda: subprocess.run(argv, capture_output=True, check=True, timeout=60))


def write_fsync_seconds(path: Path) -> float:
    """Writing 256 MiB in 1 MiB pieces and fsyncing it, as a store download must."""
    block = b"\x5a" * MIB

    def write() -> None:
        with path.open("wb") as handle:
            for _ in range(BIG_SIZE // MIB):
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())

    seconds = timed(write)
    path.unlink()
    return seconds


def python_baseline(log: Path) -> list[str]:
    """The floor under any Python agent: the venv's interpreter doing nothing."""
    argv = [str(VENV_BIN / "python"), "-c", "pass"]
    runs = [run_child(argv, env_with(), log, timeout=30) for _ in range(5)]
    return [
        report("python_startup_ms", statistics.median(r.seconds for r in runs) * 1000, 1),
        report("python_startup_peak_rss_mb", max(r.peak_rss_kib for r in runs) / 1024, 1),
    ]

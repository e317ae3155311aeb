"""Issue 4: time from an alert starting to fire until the previous version is RUNNING again.

Real Prometheus (Debian's, 1 s scrape and evaluation) scraping a test exporter whose gauge
drives an alert rule labelled service=bench-svc; a real supervisord; `ansible-proxy check`
run as cron would, in a loop every INTERVAL seconds. The budget is what the design
allows: CHECK_FAILURES x INTERVAL + WATCH_SECONDS. Prints
`inspector_rollback_time_vs_budget: R` (median of TRIALS; target <= 1.2).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import threading
import time

from tests.support.procs import LOOPBACK, free_port, wait_until
from tests.support.prometheus import Prometheus, TestExporter
from tests.support.supervisor import Supervisord

from bench.harness import VENV_BIN, Workspace, env_with, note, report, sha256_file, write_program

NAME = "bench-svc"
CHECK_FAILURES = 2
WATCH_SECONDS = 2.0
AGENT = VENV_BIN / "ansible-proxy"


class Host:
    """BIN_DIR, STORE_DIR with v1 and v2, a manifest saying v2 was upgraded from v1."""

    def __init__(self, workspace: Workspace) -> None:
        self.root = workspace.path("host")
        self.bin_dir = workspace.path("host", "bin")
        self.store = workspace.path("host", "store", NAME)
        self.manifest = self.root / "bin-manifests.json"
        self.state = self.root / "inspector-state.json"
        self.binary = self.bin_dir / NAME
        self.sha1 = write_program(self.root / "v1", "bench v1")
        self.sha2 = write_program(self.root / "v2", "bench v2")
        for sha, source in ((self.sha1, "v1"), (self.sha2, "v2")):
            (self.store / sha).write_bytes((self.root / source).read_bytes())
        (self.root / "config").write_text("")

    def install_bad(self) -> None:
        """v2 in BIN_DIR and in the manifest; no failures counted yet."""
        tmp = self.bin_dir / f".{NAME}.tmp"
        tmp.write_bytes((self.root / "v2").read_bytes())
        tmp.chmod(0o755)
        tmp.replace(self.binary)
        entry = {
            "serviceName": NAME,
            "binaryName": NAME,
            "version": self.sha2,
            "previousVersion": self.sha1,
            "history": {self.sha1: "ok", self.sha2: "ok"},
            "upgradePath": {self.sha1: "", self.sha2: self.sha1},
        }
        self.manifest.write_text(json.dumps({"binaries": [entry]}, indent=2))
        self.state.unlink(missing_ok=True)

    def env(self, supervisor_url: str, prometheus_url: str) -> dict[str, str]:
        return env_with(
            ANSIBLE_PROXY_CONFIG=str(self.root / "config"),
            # No bin-manager: a rollback needs none; its report waits in the state file.
            BIN_MANAGER_API=f"http://{LOOPBACK}:{free_port()}/api/v1",
            BIN_DIR=str(self.bin_dir),
            BIN_MANIFESTS=str(self.manifest),
            STORE_DIR=str(self.root / "store"),
            LOCK_DIR=str(self.root / "locks"),
            LOG_FILE=str(self.root / "ansible-proxy.log"),
            SUPERVISOR_URL=supervisor_url,
            PROMETHEUS_URL=prometheus_url,
            CHECK_FAILURES=str(CHECK_FAILURES),
            WATCH_SECONDS=str(WATCH_SECONDS),
            NODE_NAME="bench-node",
            HTTP_TIMEOUT="2",
        )


class CheckLoop:
    """`ansible-proxy check` started every `interval` seconds (fixed rate) in a thread."""

    def __init__(self, env: dict[str, str], interval: float) -> None:
        self.env, self.interval = env, interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.runs = 0

    def _loop(self) -> None:
        next_start = time.monotonic()
        while not self.stop_event.is_set():
            subprocess.run(
                [str(AGENT), "check"], env=self.env, capture_output=True, check=False, timeout=120
            )
            self.runs += 1
            next_start = max(next_start + self.interval, time.monotonic())
            self.stop_event.wait(max(0.0, next_start - time.monotonic()))

    def __enter__(self) -> CheckLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(180)


def trial(host: Host, sup: Supervisord, prom: Prometheus, env: dict[str, str], i: float) -> float:
    """Seconds from the alert firing (as Prometheus answers) to v1 RUNNING again."""
    host.install_bad()
    sup.call("stopProcess", NAME, True)
    sup.call("startProcess", NAME, True)
    bad_pid = sup.pid(NAME)
    prom.set_broken(NAME, False)
    with CheckLoop(env, i):
        time.sleep(i * random.uniform(1.0, 2.0))  # a healthy check or two, then a random phase
        prom.exporter.set(NAME, 1)
        wait_until(lambda: prom.firing(NAME), 30, "the alert to fire")
        fired = time.monotonic()

        def previous_running() -> bool:
            info = sup.info(NAME)
            return bool(
                info["statename"] == "RUNNING"
                and info["pid"] != bad_pid
                and sha256_file(host.binary) == host.sha1
            )

        wait_until(previous_running, 120, "the previous version RUNNING")
        elapsed = time.monotonic() - fired
    prom.set_broken(NAME, False)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inspector_bench")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between checks")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    budget = CHECK_FAILURES * args.interval + WATCH_SECONDS
    exporter = TestExporter().start()
    with Workspace("inspector") as workspace:
        try:
            host = Host(workspace)
            host.install_bad()
            sv_dir = workspace.path("supervisor")
            programs = {NAME: host.binary}
            sup = workspace.track(Supervisord(sv_dir, sv_dir, programs, inet_http=False))
            sup.start().wait_all_running()
            exporter.set(NAME, 0)
            prom = workspace.track(Prometheus(workspace.path("prometheus"), exporter, [NAME]))
            prom.start()
            env = host.env(sup.socket_url, prom.url)
            times = []
            for n in range(args.trials):
                times.append(trial(host, sup, prom, env, args.interval))
                note(f"trial {n + 1}: {times[-1]:.2f} s (budget {budget:.1f} s)")
        finally:
            exporter.stop()
    measured = statistics.median(times)
    report("inspector_rollback_time_vs_budget", measured / budget)
    report("inspector_rollback_seconds_median", measured)
    report("inspector_rollback_seconds_max", max(times))
    report("inspector_rollback_budget_seconds", budget, 1)


if __name__ == "__main__":
    main()

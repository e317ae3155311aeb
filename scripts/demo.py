"""`make demo`: the whole story on one machine, narrated as it happens.

A bin-manager (SQLite, 127.0.0.1), a supervisord with two demo services, the agent
ticking every 3 s: v1 is installed, v2 upgraded (new pid), a broken v3 rolled back
and quarantined. Then three hosts (demo_rollout.py): a staged rollout halts a broken
release at the canary and walks a good one through its waves. Everything started is
recorded by PID in DIR/pids; `make demo-stop` (--stop) ends exactly that; rerunning
stops the previous demo first. --stop-at-end: CI. The bin-manager and supervisord are
started by tests/support, as the tests start them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support: the launchers the tests and bench/ use too

from demo_rollout import tell_rollout  # noqa: E402
from demo_stack import Stack, ask_port, detail, say, service_program  # noqa: E402
from tests.support.procs import Service, free_port, wait_until  # noqa: E402
from tests.support.server import BinManager  # noqa: E402
from tests.support.supervisor import Supervisord  # noqa: E402

VENV_BIN = Path(sys.executable).parent
DEMO_DIR = ROOT / ".demo"  # --dir changes it (tests run the demo in a temp dir)
SERVICES = ("hello", "greeter")
STATE_DIRS = ("data", "host", "hosts", "supervisor")  # wiped on each run: each story starts anew
TICK_SECONDS = 3
WAIT_SECONDS = 60
ROLLOUT_CHECK_SECONDS = "0.5"  # how often the bin-manager promotes or halts (default 2)


class StoryError(Exception):
    """A step of the story did not happen as told."""


class Story:
    """The demo's running parts and the steps of its story."""

    def __init__(self, stack: Stack, port: int) -> None:
        self.stack = stack
        # Node credentials as in production (docs/security.md): the agent enrols on its
        # first tick with the enrolment token in its config, no approval needed.
        self.manager = BinManager(
            stack.dir,
            port=free_port(port),
            node_auth="required",
            extra_env={"BIN_MANAGER_ROLLOUT_INTERVAL_SECONDS": ROLLOUT_CHECK_SECONDS},
        )
        self.url = self.manager.url
        self.api = self.manager.api
        self.supervisord = Supervisord(
            stack.dir / "supervisor",
            stack.sock.parent,
            {name: stack.host / "bin" / name for name in SERVICES},
            inet_http=False,
        )
        self.token_file = stack.dir / "admin-token"
        self.ports = {name: free_port() for name in SERVICES}
        self.host = stack.host
        self.manifest = self.host / "etc" / "bin-manifests.json"
        self.log_file = self.host / "log" / "ansible-proxy.log"
        self.log_offset = 0
        self.admin_env: dict[str, str] = {}

    # -- starting the parts -----------------------------------------------------------
    def start_bin_manager(self) -> None:
        token = self.manager.admin_token
        self.token_file.write_text(token + "\n")
        self.token_file.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIN_MANAGER_")}
        self.admin_env = {**env, "BIN_MANAGER_ADMIN_TOKEN": token, "BIN_MANAGER_URL": self.url}
        say(f"starting the bin-manager on {self.url} (SQLite, artifacts: {self.manager.data_dir})")
        detail("this first chapter sends each release to every node at once")
        detail("(BIN_MANAGER_DEFAULT_ROLLOUT=--immediate); the product's default stages them:")
        detail("canary 1, waves 25%,100%, a 300 s bake each; the second chapter shows a staged one")
        try:
            self.manager.start(timeout=WAIT_SECONDS)
        finally:  # also when it did not answer: stop_all ends it
            self.stack.keep(self.manager.service)

    def start_supervisord(self) -> None:
        ports = ", ".join(f"{name} on port {port}" for name, port in self.ports.items())
        say(f"starting supervisord ({self.stack.sock}) with two demo services: {ports}")
        detail("their binaries are not installed yet, so supervisor cannot start them")
        try:
            self.supervisord.start(timeout=30)
        finally:
            self.stack.keep(self.supervisord.service)

    def agent_env(self) -> dict[str, str]:
        """The agent's whole environment: every path inside the demo dir."""
        return {
            "PATH": f"{VENV_BIN}:/usr/bin:/bin",
            "HOME": str(self.host),
            "ANSIBLE_PROXY_CONFIG": str(self.host / "etc" / "config"),
            "BIN_DIR": str(self.host / "bin"),
            "STORE_DIR": str(self.host / "store"),
            "LOCK_DIR": str(self.host / "locks"),
            "LOG_FILE": str(self.log_file),
            "BIN_MANIFESTS": str(self.manifest),
            "SUPERVISOR_URL": f"unix://{self.stack.sock}",
            "NODE_NAME": "demo-node",
            "WATCH_SECONDS": str(TICK_SECONDS),
        }

    def start_agent(self) -> None:
        config = self.host / "etc" / "config"
        config.write_text(
            f'export BIN_MANAGER_API="{self.api}"\n'
            f'export ENROLMENT_TOKEN="{self.manager.enrolment_token}"\n'
        )
        config.chmod(0o600)
        entries = [
            {"serviceName": name, "binaryName": name, "port": port, "version": "",
             "previousVersion": ""}
            for name, port in self.ports.items()
        ]  # fmt: skip
        self.manifest.write_text(json.dumps({"binaries": entries}, indent=2) + "\n")
        say(f"writing the host's bin-manifests ({self.manifest}): hello and greeter, with ports")
        say(f"starting the agent: `ansible-proxy daemon --interval {TICK_SECONDS}`")
        detail("(in production cron runs `ansible-proxy run` every minute; the demo ticks faster)")
        detail("its first tick enrols this node with the enrolment token in its config")
        self.start_daemon(self.agent_env(), self.stack.dir)

    def start_daemon(self, env: dict[str, str], workdir: Path) -> None:
        """An agent ticking every TICK_SECONDS with `env`; its output in workdir/agent.out."""
        argv = [str(VENV_BIN / "ansible-proxy"), "daemon", "--interval", str(TICK_SECONDS)]
        agent = Service(argv, workdir / "agent.out", env=env, cwd=workdir)
        self.stack.keep(agent.start())

    # -- observing ---------------------------------------------------------------------
    def wait_for(self, done: Callable[[], bool], what: str) -> None:
        try:
            wait_until(done, WAIT_SECONDS, what)
        except TimeoutError as exc:
            raise StoryError(f"{exc}; see the logs in {self.stack.dir}") from exc

    def entry(self, name: str) -> dict[str, Any]:
        try:
            doc = json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            return {}
        found: dict[str, Any] = next(
            (b for b in doc.get("binaries", []) if b.get("binaryName") == name), {}
        )
        return found

    def agent_said(self) -> None:
        """Print the agent's log lines written since the last call."""
        if not self.log_file.exists():
            return
        with self.log_file.open() as log:
            log.seek(self.log_offset)
            text = log.read()
            self.log_offset = log.tell()
        if text.strip():
            say("the agent's log says:")
            detail(text)

    def service(self, name: str) -> tuple[str, int]:
        info = self.supervisord.info(name)
        state, pid = str(info["statename"]), int(info["pid"])
        say(f"supervisor: {name} is {state}, pid {pid}; port {self.ports[name]} answers: "
            f"{ask_port(self.ports[name])!r}")  # fmt: skip
        return state, pid

    def publish(self, name: str, version: str, broken: bool = False) -> str:
        program = service_program(name, version, self.ports[name], broken)
        note = " (broken: it exits at start)" if broken else ""
        return self.release(name, version, program, note)

    def release(self, name: str, version: str, program: bytes, note: str = "") -> str:
        """`bin-manager publish` the file `program` as `name`; returns its sha256."""
        path = self.stack.dir / "releases" / f"{name}-{version}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(program)
        out = self.run_bin_manager(
            "publish", str(path), "--name", name, "--arch", os.uname().machine
        )
        sha = out.strip().split()[-1]
        say(f"published {name} {version}{note}: sha256 {sha[:12]}")
        return sha

    def run_bin_manager(self, *argv: str) -> str:
        """`bin-manager ARGV` as the operator (BIN_MANAGER_URL and the admin token set)."""
        done = subprocess.run(
            [str(VENV_BIN / "bin-manager"), *argv],
            env=self.admin_env,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise StoryError(f"bin-manager {argv[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def bin_manager(self, *argv: str) -> None:
        """Run `bin-manager ARGV` and print it as the operator sees it."""
        say(f"$ bin-manager {' '.join(argv)}")
        detail(self.run_bin_manager(*argv))

    def show_reports(self) -> None:
        """What the bin-manager recorded about the demo node's hello (its admin API)."""
        token = self.token_file.read_text().strip()
        answer = httpx.get(
            f"{self.api}/admin/nodes/demo-node",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        answer.raise_for_status()
        for row in reversed(answer.json()["data"]["progress"][:4]):
            detail(f"bin-manager: {row['binName']} -> {row['targetHash'][:12]}: {row['status']}")

    def run_command(self, *argv: str) -> None:
        done = subprocess.run(
            [str(VENV_BIN / "ansible-proxy"), *argv],
            env=self.agent_env(),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        detail(done.stdout or done.stderr)
        detail(f"(exit code {done.returncode})")


def tell(story: Story) -> None:
    """The story itself: install, upgrade, broken release rolled back and quarantined."""
    story.start_bin_manager()
    story.start_supervisord()
    v1 = {name: story.publish(name, "v1") for name in SERVICES}
    story.start_agent()
    story.wait_for(
        lambda: all(story.entry(n).get("version") == v1[n] for n in SERVICES),
        "the agent to install v1 of both services",
    )
    story.agent_said()
    say("step 1 done: the agent saw a release it did not have, downloaded and verified it,")
    detail("installed it into BIN_DIR and had supervisor start it; it stayed up, so: ok")
    pid1 = story.service("hello")[1]
    story.service("greeter")
    say("the inspector (`ansible-proxy check`) checks each service: supervisor state and port")
    story.run_command("check")

    v2 = story.publish("hello", "v2")
    story.wait_for(lambda: story.entry("hello").get("version") == v2, "the upgrade of hello to v2")
    story.agent_said()
    pid2 = story.service("hello")[1]
    say(f"step 2 done: hello upgraded to v2 and restarted: pid {pid1} -> {pid2}; v1 stays in")
    detail("the store as the rollback target (upgradePath v2 -> v1)")

    v3 = story.publish("hello", "v3", broken=True)
    story.wait_for(
        lambda: story.entry("hello").get("history", {}).get(v3) == "err",
        "the agent to try v3 and roll it back",
    )
    story.agent_said()
    story.service("hello")
    entry = story.entry("hello")
    if entry.get("version") != v2:
        raise StoryError(f"after the rollback hello runs {entry.get('version')}, not v2")
    say("step 3 done: v3 exited at once, so the agent put v2 back, restarted it, marked v3")
    detail('"err" in the manifest (quarantined) and reported the failure to the bin-manager:')
    story.show_reports()
    story.wait_for(lambda: "known bad" in story.log_file.read_text(), "a tick that skips v3")
    story.agent_said()
    say("step 4 done: the next tick was told v3 again and skipped it: a bad version is never")
    detail("retried automatically; publish a fix (or pin v2 in the dashboard) to move on")
    say("`ansible-proxy status` on the host now shows:")
    story.run_command("status")
    tell_rollout(story)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stop", action="store_true", help="stop what the demo started")
    parser.add_argument(
        "--stop-at-end", action="store_true", help="stop everything when the story ends (CI)"
    )
    parser.add_argument("--port", type=int, default=8080, help="preferred port (default 8080)")
    parser.add_argument("--dir", type=Path, default=DEMO_DIR, help="state dir (default .demo)")
    args = parser.parse_args()
    stack = Stack(args.dir.resolve())
    stack.dir.mkdir(parents=True, exist_ok=True)
    stack.stop_all()
    if args.stop:
        say("demo stopped")
        return 0
    for name in STATE_DIRS:
        shutil.rmtree(stack.dir / name, ignore_errors=True)
    stack.prepare()
    began = time.monotonic()
    story = Story(stack, args.port)
    try:
        tell(story)
    except (StoryError, RuntimeError, OSError) as exc:
        print(f"demo FAILED: {exc}", file=sys.stderr, flush=True)
        stack.stop_all()
        return 1
    say(f"the story took {time.monotonic() - began:.0f} s")
    if args.stop_at_end:
        stack.stop_all()
        say("demo stopped (--stop-at-end)")
        return 0
    print(
        f"""
Dashboard: {story.url}/dashboard/  (log in with the admin token: cat {story.token_file})
API reference: {story.url}/docs    Prometheus metrics: {story.url}/metrics
The bin-manager, supervisord, the services and the four agents keep running; the rollout of
web, wave by wave: {story.url}/dashboard/bins/web   Publish a fix for hello with
  BIN_MANAGER_ADMIN_TOKEN=$(cat {story.token_file}) .venv/bin/bin-manager publish FILE \\
      --name hello --server {story.url}
Stop everything with: make demo-stop""",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The demo's second chapter: a staged rollout of `web` over three hosts on this machine.

Each host is its own agent (NODE_NAME demo-host-N, its own BIN_DIR, STORE_DIR, LOCK_DIR,
manifest and log under DIR/hosts/demo-host-N) and its own program web-N under the demo's
supervisord. A broken v2 fails on the canary and is reverted before any other host is
told it; a good v3 walks through the waves, each after the bake. `Story` (demo.py) runs
the bin-manager commands and the waits; this module knows the hosts and the rollout.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from demo_stack import ask_port, detail, say
from tests.support.procs import free_port

if TYPE_CHECKING:
    from demo import Story

HOSTS = ("demo-host-1", "demo-host-2", "demo-host-3")
BIN = "web"
BAKE_SECONDS = 5
POLICY = f"--canary 1 --waves 50%,100% --bake {BAKE_SECONDS} --max-failures 1".split()


def web_program(version: str, broken: bool = False) -> bytes:
    """`web PORT`: the same bytes on every host, answering 'web <version>' on PORT."""
    crash = "sys.exit('this release is broken: it exits at start')" if broken else ""
    return textwrap.dedent(f"""\
        #!{sys.executable}
        # demo service web, {version}
        import socket, sys
        {crash}
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", int(sys.argv[1])))
        server.listen()
        while True:
            conn, _ = server.accept()
            conn.sendall(b"web {version}\\n")
            conn.close()
        """).encode()


class Host:
    """One of the three hosts: its directories, its agent's environment, its web-N."""

    def __init__(self, root: Path, name: str, index: int) -> None:
        self.name = name
        self.root = root / name
        self.program = f"{BIN}-{index}"
        self.port = free_port()
        self.bin_dir = self.root / "bin"
        self.manifest = self.root / "etc" / "bin-manifests.json"
        self.log_file = self.root / "log" / "ansible-proxy.log"
        self.log_offset = 0

    def agent_env(self, story: Story) -> dict[str, str]:
        return {
            **story.agent_env(),
            "HOME": str(self.root),
            "ANSIBLE_PROXY_CONFIG": str(self.root / "etc" / "config"),
            "BIN_DIR": str(self.bin_dir),
            "STORE_DIR": str(self.root / "store"),
            "LOCK_DIR": str(self.root / "locks"),
            "LOG_FILE": str(self.log_file),
            "BIN_MANIFESTS": str(self.manifest),
            "NODE_NAME": self.name,
        }

    def prepare(self, story: Story) -> None:
        """The host's directories, config (the same enrolment token) and bin-manifests."""
        for sub in ("bin", "store", "locks", "log", "etc"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        config = self.root / "etc" / "config"
        config.write_text(
            f'export BIN_MANAGER_API="{story.api}"\n'
            f'export ENROLMENT_TOKEN="{story.manager.enrolment_token}"\n'
        )
        config.chmod(0o600)
        entry = {"serviceName": self.program, "binaryName": BIN, "port": self.port,
                 "version": "", "previousVersion": ""}  # fmt: skip
        self.manifest.write_text(json.dumps({"binaries": [entry]}, indent=2) + "\n")

    def entry(self) -> dict[str, Any]:
        try:
            found: dict[str, Any] = json.loads(self.manifest.read_text())["binaries"][0]
        except (OSError, ValueError, KeyError, IndexError):
            return {}
        return found

    def log_since(self) -> str:
        """The agent's log lines written since the last call."""
        if not self.log_file.exists():
            return ""
        with self.log_file.open() as log:
            log.seek(self.log_offset)
            text = log.read()
            self.log_offset = log.tell()
        return text


class Fleet:
    """The three hosts, their agents, and what the bin-manager says of their rollout."""

    def __init__(self, story: Story) -> None:
        self.story = story
        root = story.stack.dir / "hosts"
        self.hosts = [Host(root, name, index) for index, name in enumerate(HOSTS, 1)]
        self.versions: dict[str, str] = {}  # sha256 -> "v1"

    def start(self) -> None:
        story = self.story
        for host in self.hosts:
            host.prepare(story)
            # supervisor's command line, `BIN_DIR/web PORT`: every host runs the same bytes
            # (one release), only the port its supervisor config gives differs
            story.supervisord.add_program(host.program, Path(f"{host.bin_dir / BIN} {host.port}"))
            story.start_daemon(host.agent_env(story), host.root)

    def publish(self, version: str, broken: bool = False) -> str:
        note = " (broken: it exits at start)" if broken else ""
        sha = self.story.release(BIN, version, web_program(version, broken), note)
        self.versions[sha] = version
        return sha

    def running(self, sha: str) -> bool:
        """Every host runs `sha` and the bin-manager has its report saying so."""
        if any(host.entry().get("version") != sha for host in self.hosts):
            return False
        answer = self.story.manager.admin_get(f"/bins/{BIN}/nodes")
        reported = {row["nodeName"]: row["sha256"] for row in answer.json().get("data") or []}
        return all(reported.get(host.name) == sha for host in self.hosts)

    def show(self, host: Host, before: int | None = None) -> int:
        info = self.story.supervisord.info(host.program)
        pid = int(info["pid"])
        was = f"pid {pid}"
        if before is not None:
            was = f"pid {before} -> {pid}" + (", unchanged" if pid == before else "")
        say(f"{host.name}: {host.program} is {info['statename']}, {was}; port {host.port} "
            f"answers: {ask_port(host.port)!r}")  # fmt: skip
        return pid

    def rollout(self, sha: str) -> dict[str, Any] | None:
        """The bin's rollout of `sha` (GET …/rollout), None before it starts."""
        answer = self.story.manager.admin_get(f"/bins/{BIN}/rollout")
        if answer.status_code != 200:
            return None
        rollouts = answer.json()["data"]["rollouts"]
        return next((r for r in rollouts if r["release"] == sha), None)

    def host(self, name: str) -> Host:
        return next(host for host in self.hosts if host.name == name)

    def follow(self, sha: str) -> dict[str, Any]:
        """Narrate the rollout of `sha` as it happens, until it completes or halts."""
        narrator = Narrator(self, sha)
        while narrator.ended is None:  # each step gets the whole wait: a wave takes a bake
            self.story.wait_for(narrator.poll, f"the next step of the rollout of {BIN}")
        return narrator.ended


class Narrator:
    """Tells each change of one rollout's status once, as the polls of it see it."""

    def __init__(self, fleet: Fleet, sha: str) -> None:
        self.fleet = fleet
        self.sha = sha
        self.version = fleet.versions[sha]
        self.began = time.monotonic()
        self.wave = -1
        self.seen: dict[str, str] = {}  # node name -> its state last told
        self.ended: dict[str, Any] | None = None

    def tell(self, text: str) -> None:
        say(f"[+{time.monotonic() - self.began:4.1f} s] {text}")

    def poll(self) -> bool:
        """One look at the rollout's status; True when it told something new."""
        rollout = self.fleet.rollout(self.sha)
        if rollout is None:
            return False
        before = (self.wave, dict(self.seen))
        waves = rollout["waves"]
        if self.wave < 0:
            self.started(rollout)
        elif rollout["wave"] > self.wave:
            done, now = waves[self.wave], waves[rollout["wave"]]
            names = ", ".join(node["name"] for node in now["nodes"])
            self.tell(f"{done['name']} stayed healthy for {BAKE_SECONDS} s: {now['name']} "
                      f"starts, {names} told {self.version}")  # fmt: skip
        self.wave = rollout["wave"]
        for index, wave in enumerate(waves[: self.wave + 1]):
            for node in wave["nodes"]:
                if self.seen.get(node["name"]) != node["state"]:
                    self.seen[node["name"]] = node["state"]
                    self.node(index, node)
        if rollout["state"] in ("completed", "halted"):
            self.end(rollout)
            return True
        return (self.wave, self.seen) != before

    def started(self, rollout: dict[str, Any]) -> None:
        sizes = "+".join(str(wave["size"]) for wave in rollout["waves"])
        canary = ", ".join(node["name"] for node in rollout["waves"][0]["nodes"])
        old = self.fleet.versions[rollout["previous"]]
        self.tell(f"the bin-manager started a staged rollout: {len(rollout['waves'])} waves "
                  f"({sizes} hosts); the canary is {canary}; the others are told {old} "
                  "until their wave starts")  # fmt: skip

    def node(self, wave: int, node: dict[str, Any]) -> None:
        host = self.fleet.host(node["name"])
        if node["state"] == "upgrading":
            self.tell(f"{host.name} ({'the canary' if wave == 0 else f'wave {wave}'}): its "
                      f"agent installs {self.version} and restarts {host.program}")  # fmt: skip
        elif node["state"] == "baking":
            self.tell(f"{host.name}: {host.program} runs {self.version} and stayed up; its "
                      f"bake starts ({BAKE_SECONDS} s healthy before the next wave)")  # fmt: skip
        elif node["state"] == "failed":
            self.tell(f"{host.name} failed: {node['reason']}")

    def end(self, rollout: dict[str, Any]) -> None:
        self.ended = rollout
        if rollout["state"] == "completed":
            self.tell("the rollout completed: every wave stayed healthy for its bake")
            return
        self.tell(f"the bin-manager halted the rollout: {rollout['reason']}")
        if rollout["reverted"]:
            old = self.fleet.versions[rollout["previous"]]
            detail(f"and reverted it: {old} is the latest again, {self.version} is marked bad")


def tell_rollout(story: Story) -> None:
    """Chapter 2: three hosts; a broken release stopped at the canary, a good one in waves."""
    say("chapter 2: a staged rollout over three hosts, all on this machine")
    fleet = Fleet(story)
    v1 = fleet.publish("v1")
    names = ", ".join(host.name for host in fleet.hosts)
    say(f"starting three more agents, one per host: {names}")
    detail(f"each has its own BIN_DIR, STORE_DIR, LOCK_DIR, bin-manifests and log under "
           f"{story.stack.dir / 'hosts'}/<host>,")  # fmt: skip
    detail("and its own service under supervisor: web-1, web-2, web-3 (the one binary `web`,")
    detail(f"given its port: {', '.join(str(host.port) for host in fleet.hosts)})")
    fleet.start()
    story.wait_for(lambda: fleet.running(v1), "the three hosts to install web v1")
    say("step 5 done: a bin's first release goes to every host at once: they all run web v1")
    before = {host.name: fleet.show(host) for host in fleet.hosts}

    say("the operator stages the next releases of web (BIN_MANAGER_URL and the admin token set):")
    story.bin_manager("rollout", "set", BIN, *POLICY)

    for host in fleet.hosts:
        host.log_since()  # what the agents say from here on
    v2 = fleet.publish("v2", broken=True)
    rollout = fleet.follow(v2)
    canary = fleet.host(rollout["waves"][0]["nodes"][0]["name"])
    story.wait_for(
        lambda: (
            canary.entry().get("history", {}).get(v2) == "err"
            and canary.entry().get("version") == v1
        ),
        f"{canary.name}'s agent to roll web back to v1",
    )
    say(f"{canary.name}'s agent log says:")
    detail(canary.log_since())
    say(f"step 6 done: v2 exited at once on the canary; {canary.name}'s agent put v1 back by")
    detail("itself and reported the failure, so the bin-manager halted the rollout and reverted")
    detail("it before any other host was told v2. The other hosts never restarted:")
    for host in fleet.hosts:
        fleet.show(host, before[host.name])
    story.bin_manager("rollout", "status", BIN)
    say(f"the dashboard shows the halted rollout and why: {story.url}/dashboard/bins/{BIN}")

    v3 = fleet.publish("v3")
    fleet.follow(v3)
    story.wait_for(lambda: fleet.running(v3), "the three hosts to report web v3")
    say("step 7 done: v3 reached every host, wave by wave, each wave after the bake:")
    for host in fleet.hosts:
        fleet.show(host, before[host.name])
    story.bin_manager("rollout", "status", BIN)

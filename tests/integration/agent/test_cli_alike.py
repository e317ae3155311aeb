"""`ansible-proxy`'s commands alike (issue 31.5): the shared flags after every command that
reads the host's configuration, a table or --json from every listing, `status` showing
the last tick (a host whose cron stopped must not look healthy), and `self-test` saying
why it failed to whoever runs it, on a terminal or not.

Driven from the command tables (agent/cli.py, cluster/cli.py), as cron and operators run
the real console script against a real bin-manager and supervisord.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from ansible_proxy.agent.cli import COMMANDS
from ansible_proxy.cluster.cli import CLUSTER
from ansible_proxy.commands import Command
from tests.support.agent import Agent, program
from tests.support.server import BinManager, BinManagerFactory
from tests.support.supervisor import Supervisord

# Arguments that let each command get as far as reading its config.
ARGUMENTS: dict[tuple[str, ...], list[str]] = {
    ("hold",): ["web"],
    ("release",): ["web"],
    ("forget",): ["web", "0" * 8],
    ("install-cron",): ["--path", "/nonexistent/cron.d/ansible-proxy"],
}
LISTINGS = {("status",), ("check",), ("cluster", "status")}  # a table, or JSON with --json


def _leaves(commands: Sequence[Command], words: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for command in commands:
        if command.verbs:
            yield from _leaves(command.verbs, (*words, command.name))
        elif command.shared:
            yield (*words, command.name)


SHARED = sorted(_leaves([*COMMANDS, CLUSTER]))


def test_the_commands_that_read_no_config_are_known() -> None:
    everything = {("check-trusted-keys",), ("install-files",), ("cluster", "nginx-config"), *SHARED}
    assert len(everything) == len(COMMANDS) + len(CLUSTER.verbs)
    assert set(SHARED) >= LISTINGS


# The cluster proxy's commands are not in the one-file agent (no ansible there): they are
# checked in the main pass only, not in the --agent-python39 one.
WORDS = [
    pytest.param(words, marks=pytest.mark.host_only) if words[0] == "cluster" else words
    for words in SHARED
]


@pytest.mark.parametrize("words", WORDS, ids=" ".join)
def test_every_command_reads_the_config_flag_given_after_it(
    tmp_path: Path, words: tuple[str, ...]
) -> None:
    agent = Agent(tmp_path / "host", "http://127.0.0.1:9/api/v1", "unix:///nonexistent")
    missing = agent.root / "no-such-config"
    done = agent.run(*words[1:], *ARGUMENTS.get(words, []), "--config", str(missing),
                     command=words[0])  # fmt: skip
    assert done.returncode == 2, agent.debug(done)
    assert str(missing) in done.stderr
    assert "no such file" in done.stderr.lower()


def test_status_and_cluster_status_print_a_table_or_json(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent, tmp_path: Path
) -> None:
    sha = bin_manager.publish("app", program("1"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    assert agent.run().returncode == 0, agent.debug(agent.run())

    table = agent.run(command="status")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[1].split()[:3] == ["BINARY", "SERVICE", "INSTALLED"]
    as_json = agent.run("--json", command="status")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert [(b["binary"], b["installed"], b["lastResult"]) for b in doc["binaries"]] == [
        ("app", sha, "ok")
    ]
    assert doc["lastTick"]["exitCode"] == 0
    assert doc["lastTick"]["missed"] is False

    work = tmp_path / "cluster"
    work.mkdir()
    state = {
        "services": {
            "web": {
                "history": {},
                "hosts": {
                    "h1": {
                        "version": sha,
                        "previousVersion": "",
                        "history": {sha: "ok"},
                        "upgradePath": {},
                    }
                },
            }
        }
    }
    (work / "cluster-state.json").write_text(json.dumps(state))  # fmt: skip
    cluster = agent.run("status", "--work-dir", str(work), command="cluster")
    assert cluster.returncode == 0, cluster.stderr
    assert cluster.stdout.split()[:2] == ["SERVICE", "HOST"]
    rows = json.loads(
        agent.run("status", "--work-dir", str(work), "--json", command="cluster").stdout
    )
    assert rows == [{"service": "web", "host": "h1", "running": sha, "lastTried": sha,
                     "lastResult": "ok", "rollbackTo": ""}]  # fmt: skip


@pytest.mark.host_only  # libfaketime: this machine's library, not the chroot's
def test_status_shows_the_last_tick_and_a_missed_one(
    bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    bin_manager.publish("app", program("1"))
    agent.write_manifest("app")
    supervisord.add_program("app", agent.binary("app"))
    never = agent.run(command="status")
    assert never.stdout.startswith("last tick: none recorded"), never.stdout

    assert agent.run().returncode == 0
    now = agent.run(command="status").stdout.splitlines()[0]
    assert re.fullmatch(r"last tick: \S+Z \(\d+ s ago\), exit 0: ok", now), now

    # Ten minutes on, no tick since: cron stopped (as seen by a clock ten minutes ahead).
    later = ["faketime", "+10 minutes"]
    agent.command = [*later, *agent.command]
    missed = agent.run(command="status").stdout.splitlines()[0]
    assert re.fullmatch(
        r"last tick: \S+Z \(10 min ago\), exit 0: ok; MISSED: no tick for 10 min, expected "
        r"every 60 s: is cron \(or the daemon\) still running `ansible-proxy run`\?",
        missed,
    ), missed
    assert json.loads(agent.run("--json", command="status").stdout)["lastTick"]["missed"]

    # A tick that fails says how, and is no longer missed.
    agent.command = agent.command[len(later) :]
    bin_manager.stop()
    assert agent.run().returncode == 75
    failed = agent.run(command="status").stdout.splitlines()[0]
    assert re.fullmatch(r"last tick: \S+Z \(\d+ s ago\), exit 75: API \S+ \S+: .*", failed), failed


def test_self_test_says_why_when_not_on_a_terminal(
    bin_manager_factory: BinManagerFactory, supervisord: Supervisord, tmp_path: Path
) -> None:
    server = bin_manager_factory(node_auth="required")
    agent = Agent(tmp_path / "host", server.api, supervisord.socket_url)  # no enrolment token
    agent.write_manifest()
    before = agent.run(command="self-test")  # stdin, stdout and stderr are no terminal
    assert before.returncode == 75, agent.debug(before)
    assert before.stderr.startswith("ansible-proxy: API GET ")
    assert before.stderr.endswith(
        ": this node is not enrolled yet: run `ansible-proxy run` once first (it enrols with "
        "ENROLMENT_TOKEN, or asks the bin-manager's admin to approve it)\n"
    ), before.stderr

    server.stop()
    down = agent.run(command="self-test")
    assert down.returncode == 75
    assert down.stderr.startswith("ansible-proxy: API GET "), down.stderr
    assert "unreachable" in down.stderr

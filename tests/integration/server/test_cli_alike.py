"""Every `bin-manager` command that talks to a server takes the same flags in the same
places, and every listing prints a table for people and JSON with --json (issue 31.5).

Driven from the command table itself (server/cli/commands.py), so that a new command
without a case here fails the test; run as an operator runs them: `bin-manager` as a
subprocess against a real server, with nothing in the environment but what the flags say.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ansible_proxy.commands import Command
from ansible_proxy.server.cli.commands import ADMIN_COMMANDS
from tests.support.answers import node_info
from tests.support.procs import free_port
from tests.support.server import BIN_MANAGER_SCRIPT, BinManager, BinManagerFactory

V1, V2 = b"tool v1" * 1000, b"tool v2" * 1000
SHA1, SHA2 = hashlib.sha256(V1).hexdigest(), hashlib.sha256(V2).hexdigest()
IMAGE = "registry:5000/web@sha256:" + "a" * 64
REFUSED = re.compile(r"^bin-manager: error: bin-manager refused \(4\d\d\): ", re.M)

# Every command that talks to a bin-manager, in an order that lets each one do its work:
# (the words naming it, its arguments, whether the server says yes, or refuses as it should).
CASES: list[tuple[tuple[str, ...], tuple[str, ...], bool]] = [
    (("publish",), ("{v1}", "--name", "tool"), True),
    (("publish",), ("{v2}", "--name", "tool"), True),
    (("publish-image",), (IMAGE, "--name", "img"), True),
    (("delete-release",), ("tool", SHA1), True),
    (("pin",), ("tool", SHA2), True),
    (("pause",), ("tool",), True),
    (("resume",), ("tool",), True),
    (("sign",), ("tool", SHA2, "--sign-key", "{key}", "--state-file", "{state}"), True),
    (("list",), ("releases", "tool"), True),
    (("nodes", "list"), ("--pending",), True),
    (("nodes", "approve"), ("edge-01",), True),
    (("nodes", "show"), ("edge-01",), True),
    (("nodes", "label"), ("web-01", "tier=canary"), True),
    (("nodes", "revoke"), ("edge-01",), True),
    (("nodes", "reject"), ("--all-pending",), True),
    (("nodes", "delete"), ("web-01",), True),
    (("proxies", "create"), ("cluster-a",), True),
    (("proxies", "list"), (), True),
    (("proxies", "revoke"), ("cluster-a",), True),
    (
        ("rollout", "set"),
        ("tool", "--canary", "1", "--waves", "100%", "--bake", "60", "--max-failures", "1"),
        True,
    ),
    (("rollout", "status"), ("tool",), True),
    (("rollout", "plan"), ("tool",), True),
    # img has one release, none before it to go back to: 409
    (("rollout", "revert"), ("img", "--reason", "a test"), False),
    (("rollout", "promote"), ("tool",), False),  # no staged rollout under way: 409
    (("rollout", "halt"), ("tool",), False),
    (("rollout", "resume"), ("tool",), False),
    (("rollout", "abort"), ("tool",), False),
    (("freeze",), ("--until", "48h", "--reason", "a test"), True),
    (("unfreeze",), (), True),
]
NEEDS_NO_SERVER = {("keygen",)}  # and `serve`, which is the server


def _leaves(commands: Sequence[Command], words: tuple[str, ...] = ()) -> Iterator[Command]:
    for command in commands:
        if command.verbs:
            yield from _leaves(command.verbs, (*words, command.name))
        else:
            yield command


def _named(commands: Sequence[Command], words: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for command in commands:
        if command.verbs:
            found |= _named(command.verbs, (*words, command.name))
        else:
            found.add((*words, command.name))
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    """`bin-manager ARGV` with no BIN_MANAGER_* variable: the server and token come from
    the flags, or not at all (then it would reach nothing: nothing listens on 8080 here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIN_MANAGER_")}
    env["BIN_MANAGER_URL"] = f"http://127.0.0.1:{free_port()}"  # the flag must win
    return subprocess.run(
        [str(BIN_MANAGER_SCRIPT), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _fleet(server: BinManager, running: str) -> None:
    """A node in the fleet running `tool` at `running`, and two enrolments waiting."""
    with server.client(base_url=server.api) as http:
        assert http.post("/keepalive", json=node_info("web-01")).status_code == 200
        report = {"nodeName": "web-01", "binName": "tool", "sha256": running}
        assert http.post("/bins/tool", json=report).status_code == 200
        for name in ("edge-01", "edge-02"):
            body = {**node_info(name), "nodeToken": f"{name}-token-" + "x" * 40}
            assert http.post("/enrol", json=body).status_code == 202


def test_every_command_that_talks_to_the_server_is_in_the_table() -> None:
    named = _named(ADMIN_COMMANDS)
    assert {words for words, _, _ in CASES} == named - NEEDS_NO_SERVER
    unshared = {command.name for command in _leaves(ADMIN_COMMANDS) if not command.shared}
    assert unshared == {"keygen"}


@pytest.mark.parametrize("where", ["at the end", "after the command"])
def test_every_command_takes_the_shared_flags_in_the_same_places(
    bin_manager_factory: BinManagerFactory, tmp_path: Path, where: str
) -> None:
    server = bin_manager_factory()
    token = tmp_path / "admin.token"
    token.write_text(server.admin_token + "\n")
    shared = [
        "--server",
        server.url,
        "--admin-token-file",
        str(token),
        "--ca-bundle",
        "/etc/ssl/certs/ca-certificates.crt",
        "--json",
    ]
    files = {"v1": tmp_path / "v1", "v2": tmp_path / "v2", "state": tmp_path / "signed.json"}
    files["v1"].write_bytes(V1)
    files["v2"].write_bytes(V2)
    files["key"] = tmp_path / "signer"
    assert run("keygen", str(files["key"]), "--principal", "alice").returncode == 0
    _fleet(server, server.publish("tool", b"tool v0"))  # what web-01 runs
    for words, args, accepted in CASES:
        given = [arg.format(**{k: str(v) for k, v in files.items()}) for arg in args]
        if where == "at the end":
            argv = [*words, *given, *shared]
        else:  # right after the command, before a group's verb
            argv = [words[0], *shared, *words[1:], *given]
        done = run(*argv)
        assert "usage:" not in done.stderr, (argv, done.stderr)
        if accepted:
            assert done.returncode == 0, (argv, done.stderr)
            json.loads(done.stdout)  # --json: the server's answer, whole
        else:
            assert done.returncode == 2, (argv, done.stdout, done.stderr)
            assert REFUSED.search(done.stderr), (argv, done.stderr)
    releases = server.admin_get("/bins/tool/releases").json()["data"]
    assert [(r["sha256"], r["latest"]) for r in releases][:1] == [(SHA2, True)]
    assert SHA1 not in {r["sha256"] for r in releases}  # delete-release did its work


# Every listing, what it is called with, and what its rows must name.
LISTINGS = [
    (("list", "bins"), ("tool", "img")),
    (("list", "releases", "tool"), (SHA1, SHA2)),
    (("list", "nodes"), ("web-01",)),
    (("list", "nodes", "tool"), ("web-01",)),
    (("nodes", "list"), ("web-01",)),
    (("nodes", "list", "--pending"), ("edge-01", "edge-02")),
    (("proxies", "list"), ("cluster-a",)),
]


def test_every_listing_prints_a_table_and_json_with_json(
    bin_manager: BinManager, tmp_path: Path
) -> None:
    bin_manager.publish("tool", V1)
    bin_manager.publish("tool", V2)
    bin_manager.publish("img", IMAGE.encode() + b"\n")
    bin_manager.create_proxy("cluster-a")
    _fleet(bin_manager, SHA2)
    for named in _named(ADMIN_COMMANDS):
        if named[-1] == "list":
            assert any(words[: len(named)] == named for words, _ in LISTINGS), named
    for words, names in LISTINGS:
        table = bin_manager.cli(*words)
        assert table.returncode == 0, (words, table.stderr)
        header, *rows = table.stdout.splitlines()
        assert re.fullmatch(r"[A-Z0-9]+(?: +[A-Z0-9]+)+", header), (words, table.stdout)
        for name in names:
            assert any(row.split()[0] == name for row in rows), (words, name, table.stdout)
        as_json = bin_manager.cli(*words, "--json")
        assert as_json.returncode == 0, (words, as_json.stderr)
        listed: Any = json.loads(as_json.stdout)
        assert isinstance(listed, list)
        assert len(listed) == len(rows), (words, as_json.stdout)
    shown = bin_manager.cli("nodes", "show", "edge-01")
    assert re.search(r"^pending: +[0-9a-f]{12} from ", shown.stdout, re.M), shown.stdout
    assert json.loads(bin_manager.cli("nodes", "show", "edge-01", "--json").stdout)["pending"]

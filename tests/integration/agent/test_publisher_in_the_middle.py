"""The publisher's CLI trusts no answer of the bin-manager (issue 25.1): a man in the middle
between `bin-manager publish|sign|pin` and a real bin-manager rewrites its answers, and
nothing the publisher did not name is ever signed; each refusal is one error line. A real
agent with TRUSTED_KEYS then refuses the thief's release and installs the publisher's."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ansible_proxy.signatures import Statement, parse_statement, sign
from tests.integration.agent.test_signed_releases import signing_host
from tests.support.agent import Agent, program, sha256
from tests.support.loopback import Exchange, Loopback
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

Rewrite = Callable[[dict[str, Any]], dict[str, Any]]
ADMIN = "/api/v1/admin/bins/hello"


class Middle:
    """An HTTP proxy on loopback in front of the bin-manager: `rewrites` maps an admin path
    (after /bins/hello/: signing, sequence, releases) to a change of its answer's data;
    `sent` keeps every statement that came through, as parsed."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rewrites: dict[str, Rewrite] = {}
        self.sent: list[Statement] = []
        self.server = Loopback(self.forward, keep_alive=False).start()
        self.url = self.server.url

    def forward(self, req: Exchange) -> None:
        body = req.body if req.command == "POST" else None
        path = req.path.split("?")[0]
        self.keep(path, req.headers.get("X-Ansible-Proxy-Statement"), body)
        drop = {"host", "content-length"}
        headers = {k: v for k, v in req.headers.items() if k.lower() not in drop}
        with httpx.Client(timeout=30) as http:
            answer = http.request(
                req.command, self.upstream + req.path, headers=headers, content=body
            )
        content = answer.content
        rewrite = self.rewrites.get(path.removeprefix(f"{ADMIN}/"))
        if rewrite is not None and answer.status_code == 200:
            envelope = answer.json()
            envelope["data"] = rewrite(envelope["data"])
            content = json.dumps(envelope).encode()
        req.reply(answer.status_code, content, answer.headers.get("content-type", ""))

    def keep(self, path: str, header: str | None, body: bytes | None) -> None:
        """Remember the statement a request carries (a publish's header, a JSON body's)."""
        if header:
            self.sent.append(parse_statement(base64.b64decode(header)))
        elif body and path.endswith(("/signatures", "/pin")):
            text = json.loads(body).get("statement")
            if text:
                self.sent.append(parse_statement(text.encode()))

    def close(self) -> None:
        self.server.stop()


@pytest.fixture
def middle(bin_manager: BinManager) -> Iterator[Middle]:
    proxy = Middle(bin_manager.url)
    yield proxy
    proxy.close()


def through(bin_manager: BinManager, middle: Middle, *args: str) -> tuple[int, str, str]:
    """`bin-manager ARGS` as the publisher runs it, with the man in the middle on its path."""
    done = bin_manager.cli(*args, "--server", middle.url)
    return done.returncode, done.stdout, done.stderr


def refused(result: tuple[int, str, str], reason: str) -> None:
    """One error line, naming `reason`, and exit 2."""
    code, _, stderr = result
    errors = [line for line in stderr.splitlines() if line.startswith("bin-manager: error:")]
    assert code == 2, stderr
    assert len(errors) == 1, stderr
    assert reason in errors[0], stderr


def released(sha: str, size: int) -> Rewrite:
    """The signing answer made to be about another release."""
    return lambda data: {**data, "sha256": sha, "size": size, "statement": None}


def test_nothing_the_publisher_did_not_name_is_signed(
    tmp_path: Path,
    bin_manager: BinManager,
    supervisord: Supervisord,
    agent: Agent,
    middle: Middle,
) -> None:
    _, (alice,) = signing_host(tmp_path, bin_manager, supervisord, agent, "alice")
    mallory = tmp_path / "mallory"
    assert bin_manager.cli("keygen", str(mallory), "--principal", "mallory").returncode == 0
    good = tmp_path / "good"
    good.write_bytes(program("1"))
    good_sha = bin_manager.publish("hello", good.read_bytes())  # a colleague uploads; alice signs
    # The thief, with the admin token: its own build as the latest, signed with its own key.
    evil = program("evil")
    evil_sha = bin_manager.publish("hello", evil)
    theirs = Statement("release", "hello", "x86_64", evil_sha, len(evil), 1, 2_000_000_000)
    body = {"statement": theirs.to_bytes().decode(), "signature": sign(theirs, mallory)}
    assert bin_manager._admin("POST", "/bins/hello/signatures", json=body).status_code == 200
    key = ("--sign-key", str(alice))

    # The attack: alice names the good sha; the answer says the evil one.
    middle.rewrites["signing"] = released(evil_sha, len(evil))
    refused(
        through(bin_manager, middle, "sign", "hello", good_sha, *key),
        f"the bin-manager answered about hello x86_64 {evil_sha}, not hello x86_64 {good_sha} "
        "that you named: nothing was signed",
    )
    refused(
        through(bin_manager, middle, "pin", "hello", good_sha, *key),
        f"the bin-manager answered about hello x86_64 {evil_sha}",
    )
    # A statement of the thief's release offered for co-signing.
    middle.rewrites["signing"] = lambda data: {**data, "statement": theirs.to_bytes().decode()}
    refused(
        through(bin_manager, middle, "sign", "hello", good_sha, *key),
        f"the bin-manager offers a statement of hello x86_64 {evil_sha} ({len(evil)} bytes) "
        f"to co-sign, not of hello x86_64 {good_sha} that you named: nothing was signed",
    )
    # Another size, where the publisher has the file.
    middle.rewrites["signing"] = lambda data: {**data, "size": 1 << 30}
    refused(
        through(bin_manager, middle, "sign", "hello", good_sha, "--file", str(good), *key),
        f"the bin-manager says hello x86_64 {good_sha} has 1073741824 bytes, the file has "
        f"{good.stat().st_size}: nothing was signed",
    )
    # A publish answered with another sha256: what a colleague would copy and sign.
    middle.rewrites = {"releases": lambda data: {**data, "sha256": evil_sha}}
    other = tmp_path / "other"
    other.write_bytes(program("other"))
    code, stdout, stderr = through(bin_manager, middle, "publish", str(other), "--name", "hello")
    refused((code, stdout, stderr), f"the bin-manager says it stored sha256 {evil_sha}")
    assert evil_sha not in stdout

    assert middle.sent == []  # not one statement left alice's machine
    bin_manager.pin("hello", evil_sha)  # the thief's build is the latest again
    result = agent.run()
    assert result.returncode == 1, agent.debug(result)
    assert f"hello@{evil_sha[:12]}: refused: 0 of the 1 trusted signatures needed" in agent.log()
    assert agent.installed_sha("hello") is None

    # Alice's own flow through the same path, nothing rewritten: a signed pin of what she named.
    middle.rewrites = {}
    code, _, stderr = through(bin_manager, middle, "pin", "hello", good_sha, *key)
    assert code == 0, stderr
    assert f"  sha256    {good_sha}\n" in stderr  # shown before it is signed
    assert [(s.kind, s.sha256) for s in middle.sent] == [("pin", good_sha)]
    installed = agent.run()
    assert installed.returncode == 0, agent.debug(installed)
    assert agent.installed_sha("hello") == good_sha


def test_a_lower_sequence_is_never_signed_and_the_real_flows_go_on(
    tmp_path: Path,
    bin_manager: BinManager,
    supervisord: Supervisord,
    agent: Agent,
    middle: Middle,
) -> None:
    publishers, (alice, bob) = signing_host(
        tmp_path, bin_manager, supervisord, agent, "alice", "bob"
    )
    key = ("--sign-key", str(alice))

    def publish(tag: str) -> tuple[str, tuple[int, str, str]]:
        path = tmp_path / tag
        path.write_bytes(program(tag))
        return sha256(path.read_bytes()), through(
            bin_manager, middle, "publish", str(path), "--name", "hello", *key
        )

    sha1, result = publish("1")
    assert result[0] == 0, result[2]
    sha2, result = publish("2")
    assert result[0] == 0, result[2]
    assert [s.sequence for s in middle.sent] == [1, 2]

    # The answers offer sequence 1 again: alice signs above her own highest instead.
    middle.rewrites = {
        "sequence": lambda data: {**data, "nextSequence": 1},
        "signing": lambda data: {**data, "nextSequence": 1, "statement": None},
    }
    sha3, (code, stdout, stderr) = publish("3")
    assert code == 0, stderr
    assert stdout.strip() == sha3
    assert "offered sequence 1, not above 2, the highest this machine signed" in stderr
    code, stdout, stderr = through(bin_manager, middle, "sign", "hello", sha1, *key)
    assert code == 0, stderr
    assert f"signed hello x86_64 {sha1} sequence 4 by SHA256:" in stdout
    assert [s.sequence for s in middle.sent] == [1, 2, 3, 4]

    # An older statement offered for co-signing (sha2's, sequence 2, below alice's 4).
    middle.rewrites = {}
    refused(
        through(bin_manager, middle, "sign", "hello", sha2, "--sign-key", str(alice)),
        "the statement offered to co-sign has sequence 2, below 4, the highest this machine "
        "signed for hello x86_64: an older statement? nothing was signed",
    )
    assert len(middle.sent) == 4

    # The real flows, through the same path: a renewal, a co-signature, a threshold of 2.
    agent.env["TRUSTED_KEYS"] = str(publishers.trust("alice", "bob", threshold=2))
    code, stdout, stderr = through(bin_manager, middle, "sign", "hello", sha3, "--new", *key)
    assert code == 0, stderr
    assert "sequence 5 by SHA256:" in stdout
    bobs = ("--sign-key", str(bob), "--state-file", str(tmp_path / "bob-signed.json"))
    code, stdout, stderr = through(bin_manager, middle, "sign", "hello", sha3, *bobs)
    assert code == 0, stderr
    assert "a co-signature of the statement the bin-manager holds" in stderr
    assert stdout.strip().endswith("(2 signatures)")
    assert json.loads((tmp_path / "bob-signed.json").read_text())["servers"] == {
        middle.url: {"hello": {"x86_64": 5}}
    }
    installed = agent.run()
    assert installed.returncode == 0, agent.debug(installed)
    assert agent.installed_sha("hello") == sha3
    assert "signature verified: release sequence 5" in agent.log()

"""Signed releases (docs/security.md): with TRUSTED_KEYS, only what the publishers signed is
installed — a real bin-manager, its real CLI making the keys and signatures, a real agent
and supervisord. Each refusal changes nothing on the host and says why."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ansible_proxy.signatures import Statement, sign
from tests.support.agent import Agent, program, sha256
from tests.support.loopback import Exchange, Loopback
from tests.support.nginx import CacheNginx
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord

JSON = "application/json"


class Publishers:
    """Keys made with `bin-manager keygen`, and the hosts' TRUSTED_KEYS file of them."""

    def __init__(self, root: Path, bin_manager: BinManager) -> None:
        self.root = root
        self.bin_manager = bin_manager
        self.lines: dict[str, str] = {}
        self.path = root / "trusted_keys"
        root.mkdir(parents=True, exist_ok=True)

    def key(self, name: str) -> Path:
        keyfile = self.root / name
        made = self.bin_manager.cli("keygen", str(keyfile), "--principal", name)
        assert made.returncode == 0, made.stderr
        (line,) = [ln for ln in made.stdout.splitlines() if ln.startswith(f"{name} ")]
        self.lines[name] = line
        return keyfile

    def trust(self, *names: str, threshold: int = 0) -> Path:
        """Write TRUSTED_KEYS with exactly `names` (a key left out is revoked)."""
        head = [f"# threshold: {threshold}"] if threshold else []
        self.path.write_text("\n".join([*head, *(self.lines[n] for n in names)]) + "\n")
        return self.path

    def publish(self, name: str, content: bytes, key: Path, *extra: str) -> str:
        artifact = self.root / f"{name}-{sha256(content)[:12]}"
        artifact.write_bytes(content)
        done = self.bin_manager.cli(
            "publish", str(artifact), "--name", name, "--sign-key", str(key), *extra
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith(sha256(content)), done.stdout
        return sha256(content)


def signing_host(
    tmp_path: Path,
    bin_manager: BinManager,
    supervisord: Supervisord,
    agent: Agent,
    *names: str,
) -> tuple[Publishers, list[Path]]:
    """Publishers `names` (all trusted by the agent) and the agent managing `hello`."""
    publishers = Publishers(tmp_path / "keys", bin_manager)
    keys = [publishers.key(name) for name in names]
    agent.env["TRUSTED_KEYS"] = str(publishers.trust(*names))
    agent.write_manifest("hello")
    supervisord.add_program("hello", agent.binary("hello"))
    return publishers, keys


def host_state(agent: Agent, name: str) -> tuple[str | None, dict[str, Any], list[str]]:
    """What a refusal must leave alone: the file in BIN_DIR, the entry, the store."""
    folder = agent.store_dir / name
    stored = sorted(p.name for p in folder.iterdir() if p.name[0] != ".") if folder.exists() else []
    return agent.installed_sha(name), agent.entry(name), stored


def last_progress(bin_manager: BinManager, node: str = "host-001") -> dict[str, Any]:
    detail = bin_manager.admin_get(f"/nodes/{node}")
    assert detail.status_code == 200, detail.text
    latest: dict[str, Any] = detail.json()["data"]["progress"][0]
    return latest


def assert_refused(
    agent: Agent, bin_manager: BinManager, name: str, target: str, reason: str
) -> None:
    """One tick that refuses `target` for `reason`: exit 1, one error line, a failed
    report with the reason, and the host as it was."""
    before = host_state(agent, name)
    result = agent.run()
    assert result.returncode == 1, agent.debug(result)
    refusal = [line for line in agent.log().splitlines() if "refused:" in line]
    assert refusal, agent.debug(result)
    assert reason in refusal[-1], refusal[-1]
    assert target[:12] in refusal[-1]
    assert host_state(agent, name) == before
    report = last_progress(bin_manager)
    assert (report["targetHash"], report["status"]) == (target, "failed")
    assert reason in report["reason"]
    assert report["reason"].startswith("signature: ")


def test_a_signed_release_installs_an_unsigned_one_waits_for_a_second_signer(
    tmp_path: Path, bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    publishers, (alice, bob) = signing_host(
        tmp_path, bin_manager, supervisord, agent, "alice", "bob"
    )

    sha1 = publishers.publish("hello", program("1"), alice)
    first = agent.run()
    assert first.returncode == 0, agent.debug(first)
    assert agent.installed_sha("hello") == sha1
    assert "signature verified: release sequence 1" in agent.log()

    # Whoever holds the admin token publishes, unsigned: no host installs it.
    sha2 = bin_manager.publish("hello", program("2"))
    assert_refused(agent, bin_manager, "hello", sha2, "not signed")

    # The two-person flow: another publisher signs what was uploaded; then it installs.
    signed = bin_manager.cli("sign", "hello", sha2, "--sign-key", str(bob))
    assert signed.returncode == 0, signed.stderr
    third = agent.run()
    assert third.returncode == 0, agent.debug(third)
    assert agent.installed_sha("hello") == sha2
    assert agent.entry("hello")["history"] == {sha1: "ok", sha2: "ok"}


def test_a_compromised_server_cannot_install_a_binary_of_its_own(
    tmp_path: Path, bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    publishers, (alice,) = signing_host(tmp_path, bin_manager, supervisord, agent, "alice")
    sha1 = publishers.publish("hello", program("1"), alice)
    assert agent.run().returncode == 0
    sha2 = publishers.publish("hello", program("2"), alice)

    # A shell on the server's host: the artifact file and the database row rewritten to
    # another binary, with its matching sha256 and size; the server restarted.
    evil = program("evil")
    evil_sha = sha256(evil)
    bin_manager.stop()
    artifact = bin_manager.data_dir / "artifacts" / evil_sha[:2] / evil_sha
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_bytes(evil)
    with sqlite3.connect(bin_manager.data_dir / "bin-manager.sqlite3") as db:
        changed = db.execute(
            "UPDATE releases SET sha256 = ?, size = ? WHERE sha256 = ?", (evil_sha, len(evil), sha2)
        ).rowcount
    assert changed == 1
    bin_manager.start()

    assert_refused(agent, bin_manager, "hello", evil_sha, "not this release")
    assert agent.installed_sha("hello") == sha1
    assert not (agent.store_dir / "hello" / evil_sha).exists()


def test_a_replayed_older_release_is_refused_and_a_signed_pin_accepted(
    tmp_path: Path, bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    publishers, (alice,) = signing_host(tmp_path, bin_manager, supervisord, agent, "alice")
    sha1 = publishers.publish("hello", program("1"), alice)
    assert agent.run().returncode == 0
    sha2 = publishers.publish("hello", program("2"), alice)
    assert agent.run().returncode == 0

    # An unsigned move back to the version this host ran and verified just before (what
    # a staged rollout's fleet revert does) is allowed: docs/security.md, accepted risk.
    bin_manager.pin("hello", sha1)
    back = agent.run()
    assert back.returncode == 0, agent.debug(back)
    assert agent.installed_sha("hello") == sha1
    assert "a move back to the version verified here before: allowed" in agent.log()

    sha3 = publishers.publish("hello", program("3"), alice)
    assert agent.run().returncode == 0
    assert agent.installed_sha("hello") == sha3

    # The admin token stolen: sha2's old statement (sequence 2) served again. Refused.
    bin_manager.pin("hello", sha2)
    assert_refused(agent, bin_manager, "hello", sha2, "older statement replayed")
    assert agent.installed_sha("hello") == sha3

    # The operator's signed pin: a new statement with the next sequence.
    pinned = bin_manager.cli("pin", "hello", sha2, "--sign-key", str(alice))
    assert pinned.returncode == 0, pinned.stderr
    moved = agent.run()
    assert moved.returncode == 0, agent.debug(moved)
    assert agent.installed_sha("hello") == sha2
    assert "signature verified: pin sequence 4" in agent.log()


def test_unsigned_pins_step_back_once_not_to_the_first_release(
    tmp_path: Path, bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    publishers, (alice,) = signing_host(tmp_path, bin_manager, supervisord, agent, "alice")
    shas = []
    for version in ("1", "2", "3"):
        shas.append(publishers.publish("hello", program(version), alice))
        assert agent.run().returncode == 0
    sha1, sha2, sha3 = shas

    # A stolen admin token pins one release back per tick. The first step is the move
    # back a fleet revert makes: allowed.
    bin_manager.pin("hello", sha2)
    back = agent.run()
    assert back.returncode == 0, agent.debug(back)
    assert agent.installed_sha("hello") == sha2

    # The next step back (sha2's own rollback target, verified and run here) is refused.
    bin_manager.pin("hello", sha1)
    assert_refused(agent, bin_manager, "hello", sha1, "a second move back without a signature")
    assert agent.installed_sha("hello") == sha2
    # .trust recorded the move back; what an older agent reads is there as before.
    trust = json.loads((agent.store_dir / "hello" / ".trust").read_text())
    assert trust["movedBack"] == {"x86_64": sha2}
    assert (trust["sequence"], trust["verified"]) == (3, [sha1, sha2, sha3])

    # A signed install ends it: the next fleet revert (to sha2, what sha4 replaced here)
    # steps back again, once.
    sha4 = publishers.publish("hello", program("4"), alice)
    assert agent.run().returncode == 0
    assert agent.installed_sha("hello") == sha4
    assert "movedBack" not in json.loads((agent.store_dir / "hello" / ".trust").read_text())
    bin_manager.pin("hello", sha2)
    again = agent.run()
    assert again.returncode == 0, agent.debug(again)
    assert agent.installed_sha("hello") == sha2
    bin_manager.pin("hello", sha1)
    assert_refused(agent, bin_manager, "hello", sha1, "a second move back without a signature")


def test_an_expired_signature_a_revoked_key_and_a_threshold(
    tmp_path: Path, bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    publishers, (alice, bob) = signing_host(
        tmp_path, bin_manager, supervisord, agent, "alice", "bob"
    )

    # A signature that expired (signed for two seconds, then the clock moved on).
    content = program("1")
    sha1 = bin_manager.publish("hello", content)
    answer = bin_manager.admin_get("/bins/hello/sequence")
    assert answer.status_code == 200, answer.text
    statement = Statement(
        kind="release", bin="hello", arch="x86_64", sha256=sha1, size=len(content),
        sequence=answer.json()["data"]["nextSequence"], expires=int(time.time()) + 2,
    )  # fmt: skip
    posted = bin_manager._admin(
        "POST",
        "/bins/hello/signatures",
        json={"statement": statement.to_bytes().decode(), "signature": sign(statement, bob)},
    )
    assert posted.status_code == 200, posted.text
    time.sleep(max(0.0, statement.expires - time.time()) + 0.5)
    assert_refused(agent, bin_manager, "hello", sha1, "the signature has expired")

    # Renewed by bob; then bob's key revoked (its line removed): it no longer counts.
    renewed = bin_manager.cli("sign", "hello", sha1, "--sign-key", str(bob), "--new")
    assert renewed.returncode == 0, renewed.stderr
    publishers.trust("alice")
    assert_refused(agent, bin_manager, "hello", sha1, "0 of the 1 trusted signatures")

    # Two of two needed: alice's co-signature of the same statement makes it installable.
    publishers.trust("alice", "bob", threshold=2)
    cosigned = bin_manager.cli("sign", "hello", sha1, "--sign-key", str(alice))
    assert cosigned.returncode == 0, cosigned.stderr
    installed = agent.run()
    assert installed.returncode == 0, agent.debug(installed)
    assert agent.installed_sha("hello") == sha1

    sha2 = publishers.publish("hello", program("2"), alice)  # one signer of the two
    assert_refused(agent, bin_manager, "hello", sha2, "1 of the 2 trusted signatures")


def test_plain_http_off_loopback_is_refused_before_anything_happens(agent: Agent) -> None:
    agent.write_manifest("hello")
    manifest = agent.manifest_path.read_text()
    api = "http://198.51.100.7:8080/api/v1"  # never reached: refused before any request
    result = agent.run(BIN_MANAGER_API=api)
    assert result.returncode == 2, agent.debug(result)
    (line,) = result.stderr.splitlines()
    assert "BIN_MANAGER_API http://198.51.100.7: plain HTTP off loopback is refused" in line
    assert "ALLOW_INSECURE_HTTP=1" in line
    assert agent.manifest_path.read_text() == manifest
    assert not agent.store_dir.exists()
    assert json.loads(manifest)["binaries"][0]["version"] == ""


class Swapper:
    """A man in the middle on loopback: forwards to the bin-manager, but answers that the
    latest `hello` is `evil_sha` (its own binary's, unless told another) and serves its own
    binary for every download of it (the batch poll: "not here")."""

    def __init__(self, upstream: str, evil: bytes) -> None:
        self.upstream, self.evil, self.evil_sha = upstream, evil, sha256(evil)
        self.server = Loopback(self.answer, keep_alive=False).start()
        self.url = self.server.url

    def answer(self, req: Exchange) -> None:
        path = req.path.split("?")[0]
        if req.command != "GET":
            self._forward(req)
        elif path == "/api/v1/bins":
            envelope = {"code": 404, "message": "no such endpoint", "data": None}
            req.reply(404, json.dumps(envelope).encode(), "application/json")
        elif path == "/api/v1/bins/hello":
            data = {"sha256": self.evil_sha, "version": "latest"}
            envelope = {"code": 0, "message": "success", "data": data}
            req.reply(200, json.dumps(envelope).encode(), "application/json")
        elif path.startswith(("/api/v1/download/hello", "/api/v1/releases/latest/hello")):
            req.reply(200, self.evil, "application/octet-stream")
        else:
            self._forward(req)

    def _forward(self, req: Exchange) -> None:
        headers = {k: v for k, v in req.headers.items() if k.lower() != "host"}
        with httpx.Client(timeout=30) as http:
            answer = http.request(
                req.command, self.upstream + req.path, headers=headers, content=req.body or None
            )
        req.reply(answer.status_code, answer.content, answer.headers.get("content-type", JSON))

    def close(self) -> None:
        self.server.stop()


@pytest.fixture
def swapper(bin_manager: BinManager) -> Iterator[Swapper]:
    middle = Swapper(bin_manager.url, program("evil"))
    yield middle
    middle.close()


def test_a_man_in_the_middle_swapping_the_sha_and_the_file_is_refused(
    tmp_path: Path,
    bin_manager: BinManager,
    supervisord: Supervisord,
    agent: Agent,
    swapper: Swapper,
) -> None:
    publishers = Publishers(tmp_path / "keys", bin_manager)
    alice = publishers.key("alice")
    agent.write_manifest("hello")
    supervisord.add_program("hello", agent.binary("hello"))
    sha1 = publishers.publish("hello", program("1"), alice)
    assert agent.run().returncode == 0
    middle = {"BIN_MANAGER_API": f"{swapper.url}/api/v1"}

    agent.env["TRUSTED_KEYS"] = str(publishers.trust("alice"))
    refused = agent.run(**middle)
    assert refused.returncode == 1, agent.debug(refused)
    assert f"hello@{swapper.evil_sha[:12]}: refused: not signed" in agent.log()
    assert agent.installed_sha("hello") == sha1
    assert not (agent.store_dir / "hello" / swapper.evil_sha).exists()

    # Without TRUSTED_KEYS the sha256 comes from the same path as the file: this is the
    # attack signed releases close (on loopback here; off loopback plain HTTP is refused).
    del agent.env["TRUSTED_KEYS"]
    taken = agent.run(**middle)
    assert taken.returncode == 0, agent.debug(taken)
    assert agent.installed_sha("hello") == swapper.evil_sha


def test_a_tampered_cache_entry_is_never_installed(
    tmp_path: Path, bin_manager: BinManager, supervisord: Supervisord, agent: Agent
) -> None:
    publishers = Publishers(tmp_path / "keys", bin_manager)
    alice = publishers.key("alice")
    agent.env["TRUSTED_KEYS"] = str(publishers.trust("alice"))
    content = program("1") + b"#" * 4096  # long enough to find in the cache file
    sha1 = publishers.publish("hello", content, alice)
    cache = CacheNginx(tmp_path / "nginx", bin_manager.url, "--no-auth-request")
    cache.start()
    try:
        url = f"{cache.url}/api/v1/download/hello?sha256={sha1}&arch=x86_64"
        with httpx.Client(timeout=30) as http:
            assert http.get(url).content == content  # now cached
        # The cache's host compromised: the cached body replaced, same length.
        evil = program("evil").ljust(len(content), b"#")
        (entry,) = [
            p for p in (tmp_path / "nginx").rglob("*") if p.is_file() and content in p.read_bytes()
        ]
        entry.write_bytes(entry.read_bytes().replace(content, evil))
        with httpx.Client(timeout=30) as http:
            assert http.get(url).content == evil

        agent.write_manifest("hello")
        supervisord.add_program("hello", agent.binary("hello"))
        result = agent.run(DOWNLOAD_BASE_URL=f"{cache.url}/api/v1/download")
    # The signed sha256 names the content: the cache's swapped body is thrown away.
    finally:
        cache.stop()
    assert result.returncode == 1, agent.debug(result)
    assert "sha256 mismatch" in agent.log()
    assert agent.installed_sha("hello") is None
    assert not (agent.store_dir / "hello" / sha256(evil)).exists()
    assert not (agent.store_dir / "hello" / sha1).exists()


def test_a_download_larger_than_its_signed_size_is_cut_off(
    tmp_path: Path,
    bin_manager: BinManager,
    supervisord: Supervisord,
    agent: Agent,
    swapper: Swapper,
) -> None:
    publishers, (alice,) = signing_host(tmp_path, bin_manager, supervisord, agent, "alice")
    sha1 = publishers.publish("hello", program("1"), alice)
    assert agent.run().returncode == 0
    v2 = program("2")
    sha2 = publishers.publish("hello", v2, alice)
    # The path answers the real, signed sha2, then streams far more than its signed size.
    swapper.evil_sha = sha2
    swapper.evil = v2 + b"#" * (1 << 20)

    result = agent.run(BIN_MANAGER_API=f"{swapper.url}/api/v1")
    assert result.returncode == 1, agent.debug(result)
    assert f"exceeds the limit (MAX_DOWNLOAD_BYTES, or the size signed) of {len(v2)}" in (
        agent.log()
    )
    assert agent.installed_sha("hello") == sha1
    assert sorted(p.name for p in (agent.store_dir / "hello").iterdir()) == [".trust", sha1]

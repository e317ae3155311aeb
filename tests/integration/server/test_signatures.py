"""Signed releases end to end: a real `bin-manager serve` and the real CLI — keygen,
publish --sign-key, the agents' GET …/signature checked against a TRUSTED_KEYS file made
from keygen's line, co-signing, a signed pin, and BIN_MANAGER_REQUIRE_SIGNED=1."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from ansible_proxy.server.db import queries
from ansible_proxy.server.db.engine import make_engine, make_sessionmaker, migrate
from ansible_proxy.server.hotpath.pointers import PointerCache
from ansible_proxy.server.problems import Conflict
from ansible_proxy.server.services import releases, signatures
from ansible_proxy.server.storage.artifacts import ArtifactStore, StoredArtifact
from ansible_proxy.signatures import SignatureRefused, Statement, load_trusted_keys, sign, verify
from tests.support.answers import envelope
from tests.support.server import BinManager, BinManagerFactory


def keygen(server: BinManager, key: Path, principal: str) -> str:
    made = server.cli("keygen", str(key), "--principal", principal)
    assert made.returncode == 0, made.stderr
    assert "keep it off the bin-manager server" in made.stderr
    line = made.stdout.strip()
    assert line.startswith(f'{principal} namespaces="ansible-proxy-release" ssh-ed25519 AAAA')
    return line


def signature_of(server: BinManager, name: str, sha: str) -> dict[str, object]:
    with server.client(base_url=server.api) as http:
        answer = http.get(f"/bins/{name}/signature", params={"sha256": sha, "arch": "x86_64"})
    data: dict[str, object] = envelope(answer, 200)["data"]
    return data


def test_a_signed_publish_is_served_verified_co_signed_and_pinned(
    bin_manager: BinManager, tmp_path: Path
) -> None:
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    trusted = tmp_path / "trusted_keys"
    trusted.write_text(
        "# threshold: 2\n" + keygen(bin_manager, alice, "alice") + "\n"
        + keygen(bin_manager, bob, "bob") + "\n"
    )  # fmt: skip
    again = bin_manager.cli("keygen", str(alice))
    assert again.returncode == 2
    assert "already exists" in again.stderr
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    v1.write_bytes(b"hello v1\n")
    v2.write_bytes(b"hello v2, longer\n")
    sha1, sha2 = (hashlib.sha256(path.read_bytes()).hexdigest() for path in (v1, v2))

    published = bin_manager.cli("publish", str(v1), "--name", "hello", "--sign-key", str(alice))
    assert published.returncode == 0, published.stderr
    assert published.stdout.strip() == sha1
    unsigned = envelope(bin_manager.admin_get("/bins/hello/sequence"), 200)["data"]
    assert unsigned == {"binName": "hello", "nextSequence": 2}

    served = signature_of(bin_manager, "hello", sha1)
    assert served["binName"] == "hello"
    assert served["sha256"] == sha1
    statement = str(served["statement"]).encode()
    signatures = [str(sig) for sig in served["signatures"]]  # type: ignore[attr-defined]
    assert len(signatures) == 1
    keys = load_trusted_keys(trusted)
    facts = {"bin_name": "hello", "arch": "x86_64", "sha256": sha1, "size": v1.stat().st_size,
             "highest_sequence": 0, "now": time.time()}  # fmt: skip
    threshold_not_met = None
    try:
        verify(statement, signatures, keys, **facts)  # type: ignore[arg-type]
    except Exception as exc:  # one good signature of the two the threshold wants
        threshold_not_met = str(exc)
    assert threshold_not_met is not None
    assert "1 of the 2" in threshold_not_met

    cosigned = bin_manager.cli("sign", "hello", sha1, "--sign-key", str(bob))
    assert cosigned.returncode == 0, cosigned.stderr
    assert cosigned.stdout.startswith(f"signed hello x86_64 {sha1} sequence 1 by SHA256:")
    assert cosigned.stdout.strip().endswith("(2 signatures)")
    served = signature_of(bin_manager, "hello", sha1)
    assert served["statement"] == statement.decode()
    signatures = [str(sig) for sig in served["signatures"]]  # type: ignore[attr-defined]
    assert verify(statement, signatures, keys, **facts).sequence == 1  # type: ignore[arg-type]

    second = bin_manager.cli("publish", str(v2), "--name", "hello", "--sign-key", str(bob))
    assert second.returncode == 0, second.stderr
    pinned = bin_manager.cli("pin", "hello", sha1, "--sign-key", str(alice))
    assert pinned.returncode == 0, pinned.stderr
    served = signature_of(bin_manager, "hello", sha1)
    assert '"kind":"pin"' in str(served["statement"])
    assert '"sequence":3' in str(served["statement"])
    cosigned_pin = bin_manager.cli("sign", "hello", sha1, "--sign-key", str(bob))  # threshold 2
    assert cosigned_pin.returncode == 0, cosigned_pin.stderr
    assert f"{sha1} sequence 3 by SHA256:" in cosigned_pin.stdout
    assert cosigned_pin.stdout.strip().endswith("(2 signatures)")
    pin_statement = str(served["statement"]).encode()
    served = signature_of(bin_manager, "hello", sha1)
    pin_signatures = [str(sig) for sig in served["signatures"]]  # type: ignore[attr-defined]
    pinned_ok = verify(pin_statement, pin_signatures, keys, **facts)  # type: ignore[arg-type]
    assert pinned_ok.kind == "pin"
    signing = envelope(
        bin_manager.admin_get(f"/bins/hello/signing?sha256={sha1}&arch=x86_64"), 200
    )["data"]
    assert signing["nextSequence"] == 4
    assert signing["size"] == v1.stat().st_size
    assert [(s["kind"], s["sequence"]) for s in signing["signers"]] == [
        ("release", 1), ("release", 1), ("pin", 3), ("pin", 3)
    ]  # fmt: skip

    with bin_manager.client(base_url=bin_manager.api) as http:
        missing = http.get("/bins/hello/signature", params={"sha256": "0" * 64})
        assert envelope(missing, 404)["message"].startswith("bin 'hello' has no x86_64 release")
        assert (
            envelope(http.get("/bins/hello", params={"arch": "x86_64"}), 200)["data"]["sha256"]
            == sha1
        )
    sha3 = bin_manager.publish("hello", b"v3, unsigned\n")
    with bin_manager.client(base_url=bin_manager.api) as http:
        unsigned = http.get("/bins/hello/signature", params={"sha256": sha3, "nodeName": "n1"})
        assert envelope(unsigned, 404)["message"] == f"release {sha3} of hello (x86_64) is unsigned"
    no_key = bin_manager.cli("sign", "hello", sha2, "--sign-key", str(tmp_path / "nokey"))
    assert no_key.returncode == 2
    assert "no such key file" in no_key.stderr


def test_a_stolen_admin_token_can_neither_end_signing_nor_hide_the_trusted_statement(
    bin_manager: BinManager, tmp_path: Path
) -> None:
    # Issue 25: with the admin token and a key of its own (BIN_MANAGER_TRUSTED_KEYS is off
    # by default), a thief signed sequence 2^63 - 1: `sign --new` then answered 500 for
    # ever, and GET …/signature served only the thief's statement, the highest.
    alice, mallory = tmp_path / "alice", tmp_path / "mallory"
    trusted = tmp_path / "trusted_keys"
    trusted.write_text(keygen(bin_manager, alice, "alice") + "\n")
    keygen(bin_manager, mallory, "mallory")  # not in the hosts' TRUSTED_KEYS
    v1 = tmp_path / "v1"
    v1.write_bytes(b"hello v1\n")
    sha1 = hashlib.sha256(v1.read_bytes()).hexdigest()
    published = bin_manager.cli("publish", str(v1), "--name", "hello", "--sign-key", str(alice))
    assert published.returncode == 0, published.stderr

    def thief_signs(sequence: int) -> dict[str, object]:
        text = Statement("release", "hello", "x86_64", sha1, 9, sequence, int(time.time()) + 3600)
        body = {"statement": text.to_bytes().decode(), "signature": sign(text, mallory)}
        answer: dict[str, object] = bin_manager._admin(
            "POST", "/bins/hello/signatures", json=body
        ).json()
        return answer

    refused = thief_signs(2**63 - 1)
    assert refused["code"] != 0
    assert refused["message"] == (
        "sequence 9223372036854775807 is above 9007199254740991, the largest a statement may carry"
    )
    assert thief_signs(1002)["message"] == (
        "sequence 1002 is more than 1000 above 1, the highest signed for hello: "
        "sign a new statement with sequence 2"
    )
    renewed = bin_manager.cli("sign", "hello", sha1, "--new", "--sign-key", str(alice))
    assert renewed.returncode == 0, renewed.stderr
    assert f"signed hello x86_64 {sha1} sequence 2 by SHA256:" in renewed.stdout
    assert thief_signs(1002)["code"] == 0  # the longest step: above every trusted statement

    served = signature_of(bin_manager, "hello", sha1)
    facts = {"bin_name": "hello", "arch": "x86_64", "sha256": sha1, "size": 9,
             "highest_sequence": 0, "now": time.time()}  # fmt: skip
    keys = load_trusted_keys(trusted)
    with pytest.raises(SignatureRefused, match="0 of the 1 trusted signatures needed"):
        verify(str(served["statement"]).encode(), served["signatures"], keys, **facts)  # type: ignore[arg-type]
    statements: list[dict[str, Any]] = served["statements"]  # type: ignore[assignment]
    assert [json.loads(one["statement"])["sequence"] for one in statements] == [1002, 2, 1]
    assert statements[0] == {"statement": served["statement"], "signatures": served["signatures"]}
    good = []
    for one in statements:  # what a host does: the first statement its keys signed
        try:
            good.append(verify(one["statement"].encode(), one["signatures"], keys, **facts))  # type: ignore[arg-type]
        except SignatureRefused:
            continue
    assert [statement.sequence for statement in good] == [2, 1]
    # The thief's step is more than 1000 above what alice's machine signed: her CLI will not
    # follow the server that far unless she says so (a lying server could push it to 2^53).
    again = bin_manager.cli("sign", "hello", sha1, "--new", "--sign-key", str(alice))
    assert again.returncode == 2, again.stderr
    assert "offered sequence 1003, more than 1000 above 2" in again.stderr
    assert "--allow-sequence-jump" in again.stderr
    again = bin_manager.cli(
        "sign", "hello", sha1, "--new", "--sign-key", str(alice), "--allow-sequence-jump"
    )
    assert again.returncode == 0, again.stderr
    assert "sequence 1003 by SHA256:" in again.stdout


def test_require_signed_refuses_unsigned_publish_and_pin(
    bin_manager_factory: BinManagerFactory, tmp_path: Path
) -> None:
    server = bin_manager_factory(
        extra_args=["--require-signed"], extra_env={"BIN_MANAGER_DASHBOARD_PUBLIC": "1"}
    )
    key = tmp_path / "carol"
    keygen(server, key, "carol")
    artifact = tmp_path / "v1"
    artifact.write_bytes(b"v1\n")
    sha = hashlib.sha256(b"v1\n").hexdigest()

    refused = server.cli("publish", str(artifact), "--name", "app")
    assert refused.returncode == 2
    assert (
        "(403): unsigned publish refused: BIN_MANAGER_REQUIRE_SIGNED=1 (publish with --sign-key)"
        in refused.stderr
    )
    assert envelope(server.admin_get("/bins"), 200)["data"] == []
    signed = server.cli("publish", str(artifact), "--name", "app", "--sign-key", str(key))
    assert signed.returncode == 0, signed.stderr
    pin = server.cli("pin", "app", sha)
    assert pin.returncode == 2
    assert "(403): unsigned pin refused" in pin.stderr
    assert server.cli("pin", "app", sha, "--sign-key", str(key)).returncode == 0
    with server.client(base_url=server.api) as http:
        unsigned = http.get("/bins/app/signature", params={"sha256": "1" * 64})
        assert envelope(unsigned, 404)["code"] != 0
        page = http.get(f"{server.url}/dashboard/bins/app").text  # one row, signed twice
    assert '<span class="badge ok">signed</span> pin #2 by <code title="SHA256:' in page


def test_migration_0006_goes_up_and_down_on_sqlite(tmp_path: Path) -> None:
    # Imported here, not at the top: only this test needs Alembic's API.
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from ansible_proxy.server.db.engine import MIGRATIONS_DIR, make_engine

    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'db.sqlite3'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        assert "signatures" in inspect(connection).get_table_names()
        command.downgrade(config, "0005")
        assert "signatures" not in inspect(connection).get_table_names()
    engine.dispose()


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_two_new_statements_for_one_bin_at_once_never_share_a_sequence(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Two publishers sign two releases of one bin at the same moment, both asking for
    # sequence 1: the bin's row lock makes the second wait for the first's commit, then
    # refuses it (without the lock, both checks pass before either commits).
    url = f"sqlite+pysqlite:///{tmp_path / 'db.sqlite3'}"
    if database == "postgres":
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    store = ArtifactStore(tmp_path / "artifacts")
    store.prepare()
    key = tmp_path / "alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    expires = int(time.time()) + 3600
    texts = []
    with sessions() as session:
        for content in (b"v1", b"v2"):
            artifact = _received(store, content)
            releases.publish(session, store, PointerCache(ttl=60), "web", "x86_64", artifact, now)
            texts.append(
                Statement("release", "web", "x86_64", artifact.sha256, artifact.size, 1, expires)
            )
    outcome: list[object] = []

    def second() -> None:
        text = texts[1]
        with sessions() as other:
            try:
                signatures.sign(other, None, "web", text.to_bytes().decode(), sign(text, key), now)
                outcome.append("stored")
            except Conflict as exc:
                outcome.append(exc)

    try:
        with sessions() as first:
            text = texts[0]
            release = queries.find_release(
                first, queries.require_bin(first, "web"), text.sha256, "x86_64"
            )
            assert release is not None
            target = signatures.Target("web", "x86_64", text.sha256, text.size)
            new = signatures.check(
                first, None, target, release, text.to_bytes().decode(), sign(text, key),
                ("release",), now,
            )  # fmt: skip
            thread = threading.Thread(target=second)
            thread.start()
            thread.join(timeout=1.0)  # it waits on the bin's row lock meanwhile
            signatures.record(first, "web", release, new, now)
            first.commit()
        thread.join(timeout=60)
        assert not thread.is_alive()
        (result,) = outcome
        assert isinstance(result, Conflict), result
        assert "sequence 1 is not above 1" in str(result)
    finally:
        engine.dispose()


def _received(store: ArtifactStore, content: bytes) -> StoredArtifact:
    async def chunks() -> AsyncIterator[bytes]:
        yield content

    async def run() -> StoredArtifact:
        return await store.receive(chunks(), 1024)

    return anyio.run(run)

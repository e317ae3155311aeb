"""Signed releases on the server, on a real SQLite database with real ed25519 keys made per
test (ssh-keygen): what is stored, the per-bin sequence, co-signing, and every refusal
leaving nothing stored."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db import queries
from ansible_proxy.server.db import signatures as stored
from ansible_proxy.server.db.models import Event, Release, Signature
from ansible_proxy.server.hotpath.pointers import PointerCache
from ansible_proxy.server.problems import ApiProblem, BadRequest, Conflict, Forbidden, NotFound
from ansible_proxy.server.services import releases, signatures
from ansible_proxy.server.storage.artifacts import ArtifactStore, StoredArtifact
from ansible_proxy.signatures import Statement, sign

NOW = datetime(2026, 11, 25, 7, 0, 0)
EXPIRES = int(NOW.replace(tzinfo=UTC).timestamp()) + 86400
ARCH = "x86_64"


def keypair(tmp_path: Path, name: str) -> Path:
    key = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    return key


def _store(tmp_path: Path) -> ArtifactStore:
    store = ArtifactStore(tmp_path / "artifacts")
    store.prepare()
    return store


def _receive(store: ArtifactStore, content: bytes) -> StoredArtifact:
    async def chunks() -> AsyncIterator[bytes]:
        yield content

    async def run() -> StoredArtifact:
        return await store.receive(chunks(), 1024)

    return anyio.run(run)


def statement(artifact: StoredArtifact, sequence: int, **changes: object) -> Statement:
    values: dict[str, object] = {"kind": "release", "bin": "web", "arch": ARCH,
                                 "sha256": artifact.sha256, "size": artifact.size,
                                 "sequence": sequence, "expires": EXPIRES}  # fmt: skip
    values.update(changes)
    return Statement(**values)  # type: ignore[arg-type]


def publish(
    session: Session,
    store: ArtifactStore,
    artifact: StoredArtifact,
    text: Statement | None = None,
    key: Path | None = None,
    trusted: Path | None = None,
) -> Release:
    """What POST …/releases does: check the signed statement, then publish with it."""
    new = None
    if text is not None and key is not None:
        target = signatures.Target("web", ARCH, artifact.sha256, artifact.size)
        new = signatures.check(
            session, trusted, target, None, text.to_bytes().decode(), sign(text, key),
            ("release",), NOW,
        )  # fmt: skip
    return releases.publish(
        session, store, PointerCache(ttl=60), "web", ARCH, artifact, NOW, signed=new
    )


def cosign(session: Session, text: Statement, key: Path, trusted: Path | None = None) -> int:
    done = signatures.sign(session, trusted, "web", text.to_bytes().decode(), sign(text, key), NOW)
    return done.count


def count(session: Session, table: type[Signature] | type[Release]) -> int:
    return session.scalar(select(func.count()).select_from(table)) or 0


def test_a_signed_publish_stores_its_statement_and_others_co_sign_it(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    alice, bob = keypair(tmp_path, "alice"), keypair(tmp_path, "bob")
    store = _store(tmp_path)
    v1 = _receive(store, b"v1")
    text = statement(v1, 1)
    with sessions() as session:
        release = publish(session, store, v1, text, alice)
        assert cosign(session, text, bob) == 2  # the same bytes: no new sequence needed
        assert cosign(session, text, bob) == 2  # the same key again: nothing more
        rows = stored.newest_statement(session, release.id)
        assert [row.statement for row in rows] == [text.to_bytes().decode()] * 2
        assert len({row.key_fingerprint for row in rows}) == 2
        assert all(row.key_fingerprint.startswith("SHA256:") for row in rows)
        events = session.scalars(select(Event.kind).where(Event.kind == "signed")).all()
        assert len(events) == 2
        assert stored.signed_by_release(session, release.bin_id)[(ARCH, v1.sha256)].sequence == 1


def test_a_new_statement_must_go_above_every_sequence_of_the_bin(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    alice = keypair(tmp_path, "alice")
    store = _store(tmp_path)
    v1, v2 = _receive(store, b"v1"), _receive(store, b"v2")
    with sessions() as session:
        publish(session, store, v1, statement(v1, 5), alice)
        with pytest.raises(Conflict, match="sequence 5 is not above 5"):
            publish(session, store, v2, statement(v2, 5), alice)
        with pytest.raises(Conflict, match="sequence 3 is not above 5"):
            cosign(session, statement(v1, 3), alice)  # a new statement of the same release
        session.rollback()
        assert count(session, Signature) == 1
        assert stored.max_sequence(session, queries.require_bin(session, "web").id) == 5
        # Another arch counts too: the sequence is the bin's.
        releases.publish(session, store, PointerCache(ttl=60), "web", "aarch64", v1, NOW)
        with pytest.raises(Conflict, match="sequence 5 is not above 5"):
            cosign(session, statement(v1, 5, arch="aarch64"), alice)
        session.rollback()
        publish(session, store, v2, statement(v2, 6), alice)
        assert count(session, Signature) == 2


@pytest.mark.parametrize(
    ("changes", "problem", "message"),
    [
        ({"bin": "api"}, BadRequest, "for bin 'api', not 'web'"),
        ({"arch": "aarch64"}, BadRequest, "not this x86_64 release"),
        ({"sha256": "0" * 64}, BadRequest, "not this x86_64 release"),
        ({"size": 3}, BadRequest, "says 3 bytes, the release has 2 bytes"),
        ({"kind": "pin"}, BadRequest, "kind is 'pin'; release wanted"),
        ({"expires": EXPIRES - 2 * 86400}, BadRequest, "has expired"),
    ],
)
def test_a_statement_for_anything_else_refuses_the_publish_and_stores_nothing(
    tmp_path: Path,
    sessions: sessionmaker[Session],
    changes: dict[str, object],
    problem: type[ApiProblem],
    message: str,
) -> None:
    alice = keypair(tmp_path, "alice")
    store = _store(tmp_path)
    v1 = _receive(store, b"v1")
    with sessions() as session:
        with pytest.raises(problem, match=message):
            publish(session, store, v1, statement(v1, 1, **changes), alice)
        session.rollback()
        assert (count(session, Release), count(session, Signature)) == (0, 0)


def test_a_signature_of_other_bytes_is_refused(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    alice = keypair(tmp_path, "alice")
    store = _store(tmp_path)
    v1 = _receive(store, b"v1")
    with sessions() as session:
        publish(session, store, v1)
        good = statement(v1, 1)
        forged = sign(statement(v1, 2), alice)
        with pytest.raises(BadRequest, match="signature refused: the signature does not verify"):
            signatures.sign(session, None, "web", good.to_bytes().decode(), forged, NOW)
        with pytest.raises(BadRequest, match=r"statement refused: .*canonical"):
            signatures.sign(session, None, "web", good.to_bytes().decode() + " ", forged, NOW)
        with pytest.raises(NotFound, match="no x86_64 release with sha256"):
            cosign(session, statement(v1, 1, sha256="1" * 64), alice)
        assert count(session, Signature) == 0


def test_with_trusted_keys_only_their_signatures_are_taken(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    alice, mallory = keypair(tmp_path, "alice"), keypair(tmp_path, "mallory")
    trusted = tmp_path / "trusted_keys"
    trusted.write_text(f"alice {alice.with_suffix('.pub').read_text()}")
    store = _store(tmp_path)
    v1 = _receive(store, b"v1")
    with sessions() as session:
        with pytest.raises(BadRequest, match="not signed by a key in BIN_MANAGER_TRUSTED_KEYS"):
            publish(session, store, v1, statement(v1, 1), mallory, trusted)
        session.rollback()
        assert count(session, Release) == 0
        publish(session, store, v1, statement(v1, 1), alice, trusted)
        with pytest.raises(BadRequest, match="BIN_MANAGER_TRUSTED_KEYS"):
            cosign(session, statement(v1, 1), mallory, trusted)
        assert count(session, Signature) == 1


def test_require_signed_refuses_what_comes_unsigned() -> None:
    with pytest.raises(Forbidden, match=r"^unsigned publish refused: BIN_MANAGER_REQUIRE_SIGNED=1"):
        signatures.require_signed(True, None, signatures.UNSIGNED_PUBLISH)
    with pytest.raises(Forbidden, match="use bin-manager pin --sign-key"):
        signatures.require_signed(True, "", signatures.UNSIGNED_DASHBOARD_PIN)
    signatures.require_signed(True, "{}", signatures.UNSIGNED_PIN)  # checked later, in full
    signatures.require_signed(False, None, signatures.UNSIGNED_PIN)


def test_the_publish_headers_are_base64_and_go_together() -> None:
    assert signatures.from_headers(None, None) is None
    assert signatures.from_headers("e30=", "c2ln") == ("{}", "sig")
    with pytest.raises(BadRequest, match="go together"):
        signatures.from_headers("e30=", None)
    with pytest.raises(BadRequest, match="X-Ansible-Proxy-Signature is not standard base64"):
        signatures.from_headers("e30=", "not base64!")


def test_a_pin_statement_is_stored_with_the_pin(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    alice = keypair(tmp_path, "alice")
    store = _store(tmp_path)
    v1, v2 = _receive(store, b"v1"), _receive(store, b"v2")
    pointers = PointerCache(ttl=60)
    with sessions() as session:
        publish(session, store, v1, statement(v1, 1), alice)
        publish(session, store, v2, statement(v2, 2), alice)
        bin_ = queries.require_bin(session, "web")
        old = queries.find_release(session, bin_, v1.sha256, ARCH)
        assert old is not None
        target = signatures.Target("web", ARCH, v1.sha256, v1.size)
        pin = statement(v1, 3, kind="pin")
        new = signatures.check(
            session, None, target, old, pin.to_bytes().decode(), sign(pin, alice), ("pin",), NOW
        )
        releases.pin(session, pointers, bin_, ARCH, v1.sha256, NOW, signed=new)
        newest = stored.newest_statement(session, old.id)
        assert [(row.kind, row.sequence) for row in newest] == [("pin", 3)]
        assert stored.max_sequence(session, bin_.id) == 3


def test_deleting_a_release_deletes_its_signatures(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    alice, bob = keypair(tmp_path, "alice"), keypair(tmp_path, "bob")
    store = _store(tmp_path)
    v1, v2 = _receive(store, b"v1"), _receive(store, b"v2")
    with sessions() as session:
        publish(session, store, v1, statement(v1, 1), alice)
        cosign(session, statement(v1, 1), bob)
        publish(session, store, v2, statement(v2, 2), alice)
        releases.delete_release(session, store, PointerCache(ttl=60), "web", v1.sha256, ARCH, NOW)
        assert [row.sequence for row in session.scalars(select(Signature))] == [2]


def test_a_sequence_above_the_limit_or_too_far_ahead_is_refused_and_signing_goes_on(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    # Issue 25: a stolen admin token signed sequence 2^63 - 1 with a key of its own; the
    # next sequence was then 2^63 and every signature after it a 500 (OverflowError).
    mallory, alice = keypair(tmp_path, "mallory"), keypair(tmp_path, "alice")
    store = _store(tmp_path)
    v1, v2 = _receive(store, b"v1"), _receive(store, b"v2")
    with sessions() as session:
        publish(session, store, v1, statement(v1, 1), alice)
        for sequence, message in [
            (2**63 - 1, "sequence 9223372036854775807 is above 9007199254740991, the largest"),
            (2**53, "sequence 9007199254740992 is above 9007199254740991, the largest"),
            (1002, "sequence 1002 is more than 1000 above 1, the highest signed for web: "
                   "sign a new statement with sequence 2"),
        ]:  # fmt: skip
            with pytest.raises(BadRequest, match=message):
                cosign(session, statement(v1, sequence), mallory)
            session.rollback()
        assert count(session, Signature) == 1
        publish(session, store, v2, statement(v2, 1001), alice)  # the longest step allowed
        assert stored.max_sequence(session, queries.require_bin(session, "web").id) == 1001


def test_a_sequence_stored_above_the_limit_by_an_older_server_is_ignored(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    mallory, alice = keypair(tmp_path, "mallory"), keypair(tmp_path, "alice")
    store = _store(tmp_path)
    v1 = _receive(store, b"v1")
    with sessions() as session:
        release = publish(session, store, v1, statement(v1, 1), alice)
        text = statement(v1, 2**63 - 1)  # what an older server stored (no limit then)
        session.add(
            Signature(
                release_id=release.id, bin_id=release.bin_id,
                statement=text.to_bytes().decode(),
                statement_sha256=stored.statement_hash(text.to_bytes().decode()),
                kind="release", sequence=text.sequence, key_fingerprint="SHA256:mallory",
                signature=sign(text, mallory), created_at=NOW,
            )
        )  # fmt: skip
        session.commit()
        assert stored.max_sequence(session, release.bin_id) == 1
        assert [s.sequence for s in stored.statements_of(session, release.id)] == [1]
        assert cosign(session, statement(v1, 2), alice) == 1  # signing goes on
        assert [row.sequence for row in stored.newest_statement(session, release.id)] == [2]


def test_every_statement_not_expired_is_served_highest_first(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    # A statement with a higher sequence, signed by a key hosts do not trust, no longer
    # hides the one they do: all are served, and each host picks what its keys signed.
    alice, mallory = keypair(tmp_path, "alice"), keypair(tmp_path, "mallory")
    store = _store(tmp_path)
    v1 = _receive(store, b"v1")
    now = NOW.replace(tzinfo=UTC).timestamp()
    with sessions() as session:
        release = publish(session, store, v1, statement(v1, 1), alice)
        cosign(session, statement(v1, 2), mallory)
        cosign(session, statement(v1, 3, expires=int(now) + 60), mallory)
        found = stored.statements_of(session, release.id)
    assert [(s.sequence, len(s.signatures)) for s in found] == [(3, 1), (2, 1), (1, 1)]
    assert [s.sequence for s in signatures.served(found, now)] == [3, 2, 1]
    assert [s.sequence for s in signatures.served(found, now + 61)] == [2, 1]
    # All expired: the highest alone, so that a host can say so.
    assert [s.sequence for s in signatures.served(found, EXPIRES + 1)] == [3]


def test_a_release_takes_16_live_statements_and_a_statement_16_signatures(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    # Beyond either, a 17th would push one out of what hosts are served or read: refused.
    alice = keypair(tmp_path, "alice")
    store = _store(tmp_path)
    v1 = _receive(store, b"v1")
    with sessions() as session:
        publish(session, store, v1, statement(v1, 1), alice)
        for sequence in range(2, 17):
            assert cosign(session, statement(v1, sequence), alice) == 1
        with pytest.raises(Conflict, match="already has 16 signed statements that have not"):
            cosign(session, statement(v1, 17), alice)
        session.rollback()
        for index in range(15):
            cosign(session, statement(v1, 16), keypair(tmp_path, f"k{index}"))
        assert cosign(session, statement(v1, 16), alice) == 16  # the same key again: no change
        with pytest.raises(Conflict, match="already has 16 signatures, as many as hosts read"):
            cosign(session, statement(v1, 16), keypair(tmp_path, "k15"))
        session.rollback()
        assert count(session, Signature) == 31

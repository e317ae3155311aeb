"""The release service on a real SQLite database: each change is committed before the
pointer cache is cleared, and a refused change leaves both alone."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import anyio
import pytest
from sqlalchemy.orm import Session, sessionmaker

from ansible_proxy.server.db import queries
from ansible_proxy.server.hotpath.pointers import PointerCache
from ansible_proxy.server.problems import Conflict, NotFound
from ansible_proxy.server.services import releases
from ansible_proxy.server.storage.artifacts import ArtifactStore, StoredArtifact

NOW = datetime(2026, 11, 25, 7, 0, 0)
ARCH = "x86_64"


class CommittedFirst(PointerCache):
    """A pointer cache that, when cleared, records what a fresh session sees of `hello`."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        super().__init__(ttl=60)
        self.sessions = sessions
        self.seen: list[tuple[str | None, bool]] = []

    def clear(self) -> None:
        with self.sessions() as session:
            pointer = queries.load_pointer(session, "hello", ARCH)
        self.seen.append((pointer.sha256, pointer.paused) if pointer else (None, False))
        super().clear()


def _store(tmp_path: Path, content: bytes) -> tuple[ArtifactStore, StoredArtifact]:
    store = ArtifactStore(tmp_path / "artifacts")
    store.prepare()

    async def chunks() -> AsyncIterator[bytes]:
        yield content

    async def run() -> StoredArtifact:
        return await store.receive(chunks(), 1024)

    return store, anyio.run(run)


def _cached(cache: PointerCache) -> bool:
    return cache.get("hello", ARCH)[0]


def test_each_change_is_committed_before_the_cache_is_cleared(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    store, v1 = _store(tmp_path, b"v1")
    _, v2 = _store(tmp_path, b"v2")
    _, v3 = _store(tmp_path, b"v3")
    cache = CommittedFirst(sessions)
    with sessions() as session:
        releases.publish(session, store, cache, "hello", ARCH, v1, NOW)
        releases.publish(session, store, cache, "hello", ARCH, v2, NOW)
        bin_ = queries.require_bin(session, "hello")
        releases.pin(session, cache, bin_, ARCH, v1.sha256, NOW)
        releases.set_paused(session, cache, bin_, True, NOW)
        releases.set_paused(session, cache, bin_, False, NOW)
        releases.publish(session, store, cache, "hello", ARCH, v3, NOW)  # ends the pin
        cache.put("hello", ARCH, None)
        releases.delete_release(session, store, cache, "hello", v1.sha256, ARCH, NOW)
    assert cache.seen == [
        (v1.sha256, False),
        (v2.sha256, False),
        (v1.sha256, False),
        (v1.sha256, True),
        (v1.sha256, False),
        (v3.sha256, False),
        (v3.sha256, False),  # the delete: v1 gone, v3 still the latest
    ]
    assert not _cached(cache)
    assert not store.has(v1.sha256)


def test_a_refused_change_leaves_the_cache(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    store, v1 = _store(tmp_path, b"v1")
    cache = CommittedFirst(sessions)
    with sessions() as session:
        releases.publish(session, store, cache, "hello", ARCH, v1, NOW)
        cache.put("hello", ARCH, None)
        bin_ = queries.require_bin(session, "hello")
        with pytest.raises(NotFound):
            releases.pin(session, cache, bin_, ARCH, hashlib.sha256(b"v0").hexdigest(), NOW)
        session.rollback()
        with pytest.raises(Conflict, match="latest"):
            releases.delete_release(session, store, cache, "hello", v1.sha256, ARCH, NOW)
    assert len(cache.seen) == 1  # the publish only
    assert _cached(cache)


def test_publish_refuses_an_upload_a_delete_removed(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    store, v1 = _store(tmp_path, b"v1")
    with store.removing():
        store.remove(v1.sha256)
    cache = CommittedFirst(sessions)
    with sessions() as session, pytest.raises(Conflict, match="publish again"):
        releases.publish(session, store, cache, "hello", ARCH, v1, NOW)
    assert cache.seen == []
    with sessions() as session:
        assert queries.find_bin(session, "hello") is None

"""The artifact store: content-addressed, atomic, size-capped, temp files cleaned on start."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import anyio
import pytest

from ansible_proxy.server.problems import TooLarge
from ansible_proxy.server.storage.artifacts import ArtifactStore, StoredArtifact


async def _stream(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def receive(store: ArtifactStore, chunks: list[bytes], limit: int) -> StoredArtifact:
    async def run() -> StoredArtifact:
        return await store.receive(_stream(chunks), limit)

    return anyio.run(run)


def test_upload_lands_under_its_sha256(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    store.prepare()
    stored = receive(store, [b"hello ", b"world"], limit=100)
    digest = hashlib.sha256(b"hello world").hexdigest()
    assert stored == StoredArtifact(sha256=digest, size=11)
    assert store.path_for(digest) == tmp_path / "artifacts" / digest[:2] / digest
    assert store.path_for(digest).read_bytes() == b"hello world"
    assert list(store.tmp_dir.iterdir()) == []
    assert receive(store, [b"hello world"], limit=100) == stored  # same content again


def test_over_the_limit_leaves_nothing(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    store.prepare()
    with pytest.raises(TooLarge, match="limit of 10 bytes"):
        receive(store, [b"x" * 6, b"x" * 6], limit=10)
    files = [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]
    assert files == []


def test_prepare_removes_temp_files_left_by_a_crash(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    store.prepare()
    (store.tmp_dir / "abc.part").write_bytes(b"half")
    assert store.prepare() == 1
    assert list(store.tmp_dir.iterdir()) == []


def test_paths_are_only_built_from_digests(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(ValueError, match="not a sha256"):
        store.path_for("../../etc/passwd")

"""Removing an artifact: only under the store's exclusive lock, which waits for every publish
holding the shared one (between its file landing and its row's commit)."""

from __future__ import annotations

import threading
from pathlib import Path

from ansible_proxy.server.storage.artifacts import ArtifactStore

DIGEST = "ab" * 32


def stored(tmp_path: Path) -> ArtifactStore:
    store = ArtifactStore(tmp_path / "artifacts")
    store.prepare()
    store.path_for(DIGEST).parent.mkdir(parents=True)
    store.path_for(DIGEST).write_bytes(b"content")
    return store


def test_remove_deletes_the_file_and_says_when_it_was_already_gone(tmp_path: Path) -> None:
    store = stored(tmp_path)
    with store.removing():
        assert store.remove(DIGEST) is True
        assert not store.has(DIGEST)
        assert store.remove(DIGEST) is False


def test_a_removal_waits_for_a_publish_in_progress(tmp_path: Path) -> None:
    store = stored(tmp_path)
    entered = threading.Event()

    def delete() -> None:
        with store.removing():
            entered.set()
            store.remove(DIGEST)

    with store.adding():
        worker = threading.Thread(target=delete)
        worker.start()
        assert not entered.wait(0.3)  # still blocked: the publish has not committed
        assert store.has(DIGEST)
    assert entered.wait(10)
    worker.join(10)
    assert not store.has(DIGEST)


def test_publishes_share_the_store_and_wait_for_a_removal(tmp_path: Path) -> None:
    store = stored(tmp_path)
    entered = threading.Event()

    def publish() -> None:
        with store.adding(), store.adding():  # shared: two at once never block each other
            entered.set()

    with store.removing():
        worker = threading.Thread(target=publish)
        worker.start()
        assert not entered.wait(0.3)
    assert entered.wait(10)
    worker.join(10)

"""kill -9 in the middle of a large upload: after a restart nothing half-written is served."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.answers import envelope
from tests.support.procs import wait_until
from tests.support.server import BinManager

CHUNK = b"\xab" * (1024 * 1024)
DECLARED = 512 * 1024 * 1024  # what the client claims it will send


def part_files(manager: BinManager) -> list[Path]:
    return list((manager.data_dir / "artifacts" / "tmp").glob("*"))


def test_kill_during_upload_leaves_no_release_and_serves_nothing(bin_manager: BinManager) -> None:
    old = bin_manager.publish("big", b"the previous release")

    def body() -> Iterator[bytes]:
        for _ in range(64):  # 64 MiB of the 512 MiB declared, then the server dies
            yield CHUNK
        wait_until(
            lambda: any(p.stat().st_size > 0 for p in part_files(bin_manager)),
            30,
            "the upload to reach the temp file",
        )
        bin_manager.kill()
        yield CHUNK

    with pytest.raises(httpx.TransportError), bin_manager.client() as http:
        http.post(
            f"{bin_manager.api}/admin/bins/big/releases",
            content=body(),
            headers=bin_manager.admin_headers
            | {"Content-Type": "application/octet-stream", "Content-Length": str(DECLARED)},
        )
    assert part_files(bin_manager), "the crash should have left a temp file behind"

    bin_manager.start()
    assert part_files(bin_manager) == []  # removed on start
    releases = envelope(bin_manager.admin_get("/bins/big/releases"), 200)["data"]
    assert [r["sha256"] for r in releases] == [old]
    with bin_manager.client(base_url=bin_manager.api) as http:
        assert envelope(http.get("/bins/big"), 200)["data"]["sha256"] == old
        assert http.get("/download/big").content == b"the previous release"
        partial = hashlib.sha256(CHUNK * 64).hexdigest()
        envelope(http.get("/download/big", params={"sha256": partial}), 404)


def test_an_orphan_artifact_without_a_release_is_never_served(bin_manager: BinManager) -> None:
    # A crash between the rename and the commit leaves a complete file no row points at.
    content = b"renamed but never committed"
    sha = hashlib.sha256(content).hexdigest()
    orphan = bin_manager.data_dir / "artifacts" / sha[:2] / sha
    bin_manager.publish("app", b"committed release")
    bin_manager.kill()
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(content)
    os.sync()
    bin_manager.start()
    with bin_manager.client(base_url=bin_manager.api) as http:
        envelope(http.get("/download/app", params={"sha256": sha}), 404)
        assert http.get("/download/app").content == b"committed release"
    # Publishing that very content later makes it a release like any other.
    assert bin_manager.publish("app", content) == sha
    with bin_manager.client(base_url=bin_manager.api) as http:
        assert http.get("/download/app", params={"sha256": sha}).content == content

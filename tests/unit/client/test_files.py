"""write_atomic: a crash leaves old or new whole; a symlink is written through, kept a link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_proxy.client.files import write_atomic


def test_a_plain_file_is_replaced_keeping_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    path.chmod(0o600)
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_chain_of_symlinks_is_written_through_to_the_final_target(tmp_path: Path) -> None:
    real, links = tmp_path / "real", tmp_path / "links"
    real.mkdir()
    links.mkdir()
    target = real / "m.yaml"
    target.write_text("old")
    target.chmod(0o604)
    (links / "middle.yaml").symlink_to("../real/m.yaml")
    first = links / "m.yaml"
    first.symlink_to("middle.yaml")
    write_atomic(first, b"new")
    assert first.is_symlink()
    assert (links / "middle.yaml").is_symlink()
    assert str(first.readlink()) == "middle.yaml"
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o604
    assert sorted(os.listdir(real)) == ["m.yaml"]
    assert sorted(os.listdir(links)) == ["m.yaml", "middle.yaml"]


def test_an_explicit_mode_applies_to_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out.conf"
    target.write_text("old")
    link = tmp_path / "link.conf"
    link.symlink_to(target)
    write_atomic(link, b"new", 0o644)
    assert link.is_symlink()
    assert target.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("points_at", ["gone/m.json", "loop.json"])
def test_a_dangling_or_looping_symlink_raises_and_writes_nothing(
    tmp_path: Path, points_at: str
) -> None:
    link = tmp_path / "loop.json" if points_at == "loop.json" else tmp_path / "m.json"
    link.symlink_to(points_at)
    with pytest.raises(OSError, match=f"symlink to {points_at}: "):
        write_atomic(link, b"new")
    assert link.is_symlink()
    assert os.listdir(tmp_path) == [link.name]

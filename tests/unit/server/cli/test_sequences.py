"""The publisher's record of the sequences it signed (server/cli/sequences.py): where it is
kept, that it only grows, per server, bin and arch, and that a bad file is one clear error
that changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_proxy.errors import ConfigError
from ansible_proxy.server.cli import sequences

SERVER = "https://bin-manager.example:8080"


def test_the_record_is_kept_in_xdg_state_home_else_under_home(tmp_path: Path) -> None:
    state = {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": "/home/alice"}
    assert sequences.default_path(state) == tmp_path / "state/ansible-proxy/signed.json"
    relative = {"XDG_STATE_HOME": "state", "HOME": "/home/alice"}  # XDG: ignored
    assert sequences.default_path(relative) == Path(
        "/home/alice/.local/state/ansible-proxy/signed.json"
    )
    with pytest.raises(ConfigError, match="give --state-file PATH"):
        sequences.default_path({})


def test_the_highest_sequence_grows_per_server_bin_and_arch(tmp_path: Path) -> None:
    path = tmp_path / "state" / "signed.json"
    with sequences.opened(path, SERVER) as record:
        assert record.highest("hello", "x86_64") == 0
        record.raise_to("hello", "x86_64", 5)
        record.raise_to("hello", "x86_64", 3)  # never lowered
        record.raise_to("hello", "aarch64", 1)
    with sequences.opened(path, "http://127.0.0.1:8080") as other:
        assert other.highest("hello", "x86_64") == 0
        other.raise_to("web", "x86_64", 9)
    with sequences.opened(path, SERVER) as record:
        assert (record.highest("hello", "x86_64"), record.highest("hello", "aarch64")) == (5, 1)
    assert json.loads(path.read_text())["servers"] == {
        SERVER: {"hello": {"x86_64": 5, "aarch64": 1}},
        "http://127.0.0.1:8080": {"web": {"x86_64": 9}},
    }
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [".signed.json.lock", "signed.json"]


@pytest.mark.parametrize(
    "text",
    ["{", '{"v": 2, "servers": {}}', '{"v": 1, "servers": {"s": {"hello": 3}}}', "[]"],
)
def test_a_bad_record_is_one_error_and_stays_as_it_was(tmp_path: Path, text: str) -> None:
    path = tmp_path / "signed.json"
    path.write_text(text)
    wanted = rf"^the state file {path} is .*: fix it, or remove"
    with pytest.raises(ConfigError, match=wanted), sequences.opened(path, SERVER):
        pass
    assert path.read_text() == text

"""The cluster state file: per host version, history and upgrade path; atomic saves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_proxy.cluster.state import ClusterState, load, save
from ansible_proxy.errors import ConfigError

V1, V2 = "1" * 64, "2" * 64


def test_upgrade_then_failure_keeps_the_rollback_path(tmp_path: Path) -> None:
    state = ClusterState()
    state.begin("hello", "h1", V1)
    state.succeed("hello", "h1", V1)
    state.begin("hello", "h1", V2)
    assert state.result("hello", "h1", V2) == ""
    assert state.rollback_target("hello", "h1", V2) == V1
    state.fail("hello", "h1", V2)
    path = tmp_path / "state.json"
    save(path, state)
    again = load(path)
    assert again.version("hello", "h1") == V1
    assert again.result("hello", "h1", V2) == "err"
    assert json.loads(path.read_text())["services"]["hello"]["history"] == {V2: "err"}
    assert again.rows() == [("hello", "h1", V1[:12], f"{V2[:12]} err", "-")]


def test_missing_file_is_empty_and_garbage_is_a_config_error(tmp_path: Path) -> None:
    assert load(tmp_path / "none.json").rows() == []
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load(bad)
    assert bad.read_text() == "{not json"

"""NODE_LABELS reach the bin-manager with the keepalive (a rollout's --canary-label picks
nodes by them): sent when set, re-sent on the next tick after a change, refused when bad."""

from __future__ import annotations

import json

from tests.support.agent import Agent
from tests.support.server import BinManager


def _server_labels(bin_manager: BinManager, node_name: str = "host-001") -> str:
    response = bin_manager.admin_get("/nodes")
    assert response.status_code == 200, response.text
    (node,) = [n for n in response.json()["data"] if n["nodeName"] == node_name]
    labels: str = node["labels"]
    return labels


def _posts(agent: Agent) -> int:
    """How many times the agent has POSTed its keepalive so far (its log says each)."""
    log = agent.log()
    return log.count("registered with the bin-manager") + log.count("node info updated\n")


def test_labels_are_sent_changed_and_cleared(bin_manager: BinManager, agent: Agent) -> None:
    agent.write_manifest()
    with agent.config.open("a") as config:  # as an operator writes /etc/ansible-proxy/config
        config.write('export NODE_LABELS="zone=a, tier=canary"\n')

    first = agent.run()
    assert first.returncode == 0, agent.debug(first)
    assert _server_labels(bin_manager) == "tier=canary,zone=a"
    assert agent.manifest()["nodeInfo"]["labels"] == {"tier": "canary", "zone": "a"}
    assert _posts(agent) == 1

    same = agent.run()  # nothing changed: no POST, no manifest write
    assert same.returncode == 0, agent.debug(same)
    assert _posts(agent) == 1

    changed = agent.run(NODE_LABELS="tier=stable,zone=a")  # the environment wins
    assert changed.returncode == 0, agent.debug(changed)
    assert _server_labels(bin_manager) == "tier=stable,zone=a"
    assert agent.manifest()["nodeInfo"]["labels"] == {"tier": "stable", "zone": "a"}
    assert _posts(agent) == 2

    cleared = agent.run(NODE_LABELS="")
    assert cleared.returncode == 0, agent.debug(cleared)
    assert _server_labels(bin_manager) == ""
    assert "labels" not in agent.manifest()["nodeInfo"]
    assert _posts(agent) == 3


def test_without_labels_the_node_info_is_as_before(bin_manager: BinManager, agent: Agent) -> None:
    agent.write_manifest()
    result = agent.run()
    assert result.returncode == 0, agent.debug(result)
    assert _server_labels(bin_manager) == ""
    assert sorted(agent.manifest()["nodeInfo"]) == [
        "binProxyVersion", "cpuArch", "nodeName", "osRelease"
    ]  # fmt: skip


def test_bad_labels_are_one_line_naming_the_key_and_change_nothing(
    bin_manager: BinManager, agent: Agent
) -> None:
    agent.write_manifest()
    good = agent.run(NODE_LABELS="tier=canary")
    assert good.returncode == 0, agent.debug(good)
    manifest_before = agent.manifest_path.read_bytes()
    state_before = (agent.store_dir / ".state.json").read_bytes()

    for bad in ("tier", "tier=a b", "tier=a,tier=b", "tier=a\nzone=b"):
        result = agent.run(NODE_LABELS=bad)
        assert result.returncode == 2, agent.debug(result)
        assert result.stderr.count("\n") == 1, result.stderr
        assert "NODE_LABELS: " in result.stderr
    assert agent.manifest_path.read_bytes() == manifest_before
    assert (agent.store_dir / ".state.json").read_bytes() == state_before
    assert _server_labels(bin_manager) == "tier=canary"
    assert json.loads(manifest_before)["nodeInfo"]["labels"] == {"tier": "canary"}

"""The keepalive body (agent/tick.py): the held binaries, in a shape the server takes."""

from __future__ import annotations

import json
from pathlib import Path

from ansible_proxy.agent.manifest import load_manifest
from ansible_proxy.agent.tick import keepalive_body
from ansible_proxy.client.api import MAX_HOLDS, MAX_REASON, node_info
from ansible_proxy.protocol import NodeInfo

INFO = node_info("x86_64", "Debian 12", "n1")


def manifest(tmp_path: Path, holds: dict[str, object]) -> Path:
    entries: list[dict[str, object]] = [{"serviceName": "web", "binaryName": "web", "version": ""}]
    entries += [{"binaryName": name, "version": "", "hold": hold} for name, hold in holds.items()]
    path = tmp_path / "bin-manifests.json"
    path.write_text(json.dumps({"binaries": entries}))
    return path


def test_nothing_held_is_the_node_info_alone(tmp_path: Path) -> None:
    assert keepalive_body(INFO, load_manifest(manifest(tmp_path, {}))) == INFO


def test_each_hold_is_sent_as_one_line_the_server_takes(tmp_path: Path) -> None:
    holds: dict[str, object] = {
        "db": "disk swap,\nticket 4711",  # written by hand, over two lines
        "cache": True,  # `"hold": true` by hand
        "long": "x" * 400,
    }
    body = keepalive_body(INFO, load_manifest(manifest(tmp_path, holds)))
    held = body["held"]
    assert isinstance(held, dict)
    assert held["db"] == "disk swap, ticket 4711"
    assert held["cache"] == "held"
    assert len(held["long"]) == MAX_REASON
    assert set(held) == {"db", "cache", "long"}  # "web" is not held
    assert NodeInfo.model_validate(body).held == held


def test_more_holds_than_the_server_takes_are_cut_not_refused_whole(tmp_path: Path) -> None:
    holds: dict[str, object] = {f"bin{n:03d}": "maintenance" for n in range(MAX_HOLDS + 6)}
    body = keepalive_body(INFO, load_manifest(manifest(tmp_path, holds)))
    held = body["held"]
    assert isinstance(held, dict)
    assert len(held) == MAX_HOLDS
    NodeInfo.model_validate(body)  # the server would refuse the keepalive otherwise

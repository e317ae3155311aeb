"""The keepalive body: labels only when the node has some, in the wire contract's shape."""

from __future__ import annotations

import json

from ansible_proxy import __version__
from ansible_proxy.client.api import node_info
from ansible_proxy.protocol import NodeInfo


def test_without_labels_the_body_is_the_original_four_fields() -> None:
    none: tuple[dict[str, str] | None, ...] = (None, {})
    for labels in none:
        assert node_info("x86_64", "Debian 12", "n1", labels) == {
            "cpuArch": "x86_64",
            "osRelease": "Debian 12",
            "nodeName": "n1",
            "binProxyVersion": __version__,
        }


def test_labels_are_sent_as_a_mapping_the_server_accepts() -> None:
    body = node_info("x86_64", "Debian 12", "n1", {"zone": "a", "tier": "canary"})
    assert body["labels"] == {"tier": "canary", "zone": "a"}
    assert json.dumps(body["labels"]) == '{"tier": "canary", "zone": "a"}'  # sorted by key
    assert NodeInfo.model_validate(body).labels == {"tier": "canary", "zone": "a"}

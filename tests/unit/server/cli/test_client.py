"""The admin CLI's HTTP client (server/cli/client.py) without pydantic."""

from __future__ import annotations

from ansible_proxy import protocol
from ansible_proxy.server.cli import client


def test_the_api_prefix_is_the_wire_contracts() -> None:
    assert client.API_PREFIX == protocol.API_PREFIX

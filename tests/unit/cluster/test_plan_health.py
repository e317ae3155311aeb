"""The pure grouping of a cluster tick, and the post-deploy health probe."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from ansible_proxy.cluster.health import healthy
from ansible_proxy.cluster.inventory import Node
from ansible_proxy.cluster.manifests import Health
from ansible_proxy.cluster.plan import batches, group_hosts
from ansible_proxy.cluster.state import ClusterState
from tests.support.loopback import Exchange, Loopback

A, B, C = "a" * 64, "b" * 64, "c" * 64


def node(name: str, arch: str = "x86_64") -> Node:
    return Node(name, name, "192.0.2.1", arch, "", ("svc",))


def test_hosts_are_grouped_by_arch_and_sha_skipping_current_and_known_bad() -> None:
    state = ClusterState()
    state.succeed("svc", "current", A)
    state.fail("svc", "burnt", B)
    members = [node("current"), node("burnt"), node("new"), node("arm", "aarch64")]
    latest = {"current": A, "burnt": B, "new": B, "arm": C}
    plan = group_hosts("svc", members, latest, state)
    assert plan.groups == {("x86_64", B): [node("new")], ("aarch64", C): [node("arm", "aarch64")]}
    assert plan.known_bad == [(node("burnt"), B)]


def test_batches_of_serial_hosts() -> None:
    nodes = [node(f"n{i}") for i in range(5)]
    assert batches(nodes, 0) == [nodes]
    assert [len(b) for b in batches(nodes, 2)] == [2, 2, 1]


@pytest.fixture
def http_port() -> Iterator[int]:
    def answer(req: Exchange) -> None:
        req.reply(200 if req.path == "/healthz" else 503)

    with Loopback(answer, keep_alive=False) as server:
        yield server.port


def test_port_and_url_probes(http_port: int) -> None:
    assert healthy(Health(port=http_port, timeout=1), "127.0.0.1")
    ok = Health(url=f"http://{{host}}:{http_port}/healthz", timeout=1)
    assert healthy(ok, "127.0.0.1")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = unused.getsockname()[1]  # bound, never listening: connections refused
        ticks = iter(range(100))
        down = Health(port=closed, timeout=3)
        assert not healthy(down, "127.0.0.1", clock=lambda: next(ticks), sleep=lambda _: None)
    bad = Health(url=f"http://{{host}}:{http_port}/broken", timeout=1)
    ticks = iter(range(100))
    assert not healthy(bad, "127.0.0.1", clock=lambda: next(ticks), sleep=lambda _: None)

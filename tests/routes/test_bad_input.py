"""Every bad input gets the envelope with a clear message and the right 4xx, and changes
nothing: not the database (as the admin API shows it) and not the artifact store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.answers import MAX_UPLOAD, envelope, node_info, sha, state
from tests.support.inprocess import BinManagerApp

KNOWN_BIN = "known-bin"
KNOWN_NODE = "known-node"
CONTENT = b"released content"
SHA = sha(CONTENT)
OTHER_SHA = sha(b"never published")


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    status: int
    says: str  # a word the message must contain
    admin: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


def report(**changes: Any) -> dict[str, Any]:
    body = {"nodeName": KNOWN_NODE, "binName": KNOWN_BIN, "sha256": SHA, "version": "latest"}
    return body | changes


def progress(**changes: Any) -> dict[str, Any]:
    body = {
        "nodeName": KNOWN_NODE,
        "binName": KNOWN_BIN,
        "targetHash": SHA,
        "processingTime": 5,
        "status": "in_progress",
    }
    return body | changes


def too_big() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
    for _ in range(3):
        yield b"x" * (MAX_UPLOAD // 2 + 1)


OCTETS = {"Content-Type": "application/octet-stream"}
CASES = [
    # bin names, path traversal included
    Case("GET", "/bins/a%2F..%2Fb", 400, "bin name"),
    Case("GET", "/bins/%2E%2E", 400, "bin name"),
    Case("GET", "/download/..%2F..%2Fetc%2Fpasswd", 400, "bin name"),
    Case("GET", "/bins/" + "x" * 129, 400, "bin name"),
    Case("GET", "/bins/bad%20name", 400, "bin name"),
    Case("POST", "/bins/a%2Fb", 400, "bin name", kwargs={"json": report(binName="a/b")}),
    Case("POST", "/admin/bins/..%2Fx/releases", 400, "bin name", True, {"content": b"x"}),
    Case("POST", "/admin/bins/%2E/releases", 400, "bin name", True, {"content": b"x"}),
    # unknown bins, nodes, releases
    Case("GET", "/bins/no-such-bin", 404, "unknown bin"),
    Case("GET", "/download/no-such-bin", 404, "unknown bin"),
    Case("GET", "/releases/latest/no-such-bin/sha256", 404, "unknown bin"),
    Case("GET", "/releases/latest/no-such-bin/download", 404, "unknown bin"),
    Case("GET", f"/download/{KNOWN_BIN}?sha256={OTHER_SHA}", 404, OTHER_SHA),
    Case("GET", f"/bins/{KNOWN_BIN}?arch=aarch64", 404, "aarch64"),
    Case("GET", "/keepalive?nodeName=nobody", 404, "unknown node"),
    Case(
        "POST",
        "/bins/no-such-bin",
        404,
        "unknown bin",
        kwargs={"json": report(binName="no-such-bin")},
    ),
    Case("POST", f"/bins/{KNOWN_BIN}", 404, "unknown node", kwargs={"json": report(nodeName="x")}),
    Case(
        "POST",
        f"/bins/{KNOWN_BIN}/progress",
        404,
        "unknown node",
        kwargs={"json": progress(nodeName="x")},
    ),
    Case("GET", "/admin/bins/no-such-bin/releases", 404, "unknown bin", True),
    Case("GET", "/admin/nodes/nobody", 404, "unknown node", True),
    Case("POST", "/admin/bins/no-such-bin/pause", 404, "unknown bin", True),
    Case(
        "POST",
        f"/admin/bins/{KNOWN_BIN}/pin",
        404,
        OTHER_SHA,
        True,
        {"json": {"sha256": OTHER_SHA}},
    ),
    Case("GET", "/no/such/endpoint", 404, "endpoint"),
    Case("DELETE", "/keepalive", 405, "Method"),
    # bad parameters
    Case("GET", "/keepalive", 422, "nodeName"),
    Case("GET", f"/bins/{KNOWN_BIN}?arch=sparc", 400, "arch"),
    Case("GET", f"/download/{KNOWN_BIN}?sha256=not-a-hash", 400, "sha256"),
    Case("GET", f"/bins/{KNOWN_BIN}?nodeName=a%00b", 422, "invalid node name"),
    Case("GET", "/keepalive?nodeName=a%00b", 422, "invalid node name"),
    Case("GET", "/keepalive?nodeName=a%0Ab", 422, "invalid node name"),
    Case("GET", f"/download/{KNOWN_BIN}?nodeName=a%20b", 422, "invalid node name"),
    Case("GET", "/admin/nodes/a%00b", 422, "invalid node name", True),
    Case("GET", "/admin/nodes/a%20b", 422, "invalid node name", True),
    Case(
        "POST", f"/admin/bins/{KNOWN_BIN}/releases?arch=mips", 400, "arch", True, {"content": b"x"}
    ),
    Case(
        "POST",
        f"/admin/bins/{KNOWN_BIN}/pin",
        400,
        "arch",
        True,
        {"json": {"sha256": SHA, "arch": "ppc"}},
    ),
    # malformed JSON and wrong types
    Case(
        "POST",
        "/keepalive",
        400,
        "JSON",
        kwargs={"content": b"{not json", "headers": {"Content-Type": "application/json"}},
    ),
    Case("POST", "/keepalive", 422, "cpuArch", kwargs={"json": node_info("n") | {"cpuArch": 5}}),
    Case("POST", "/keepalive", 422, "nodeName", kwargs={"json": {"cpuArch": "x86_64"}}),
    Case("POST", "/keepalive", 422, "body", kwargs={"json": ["a", "list"]}),
    Case("POST", "/keepalive", 422, "nodeName", kwargs={"json": node_info("n" * 300)}),
    Case("POST", "/keepalive", 422, "invalid node", kwargs={"json": node_info("bad\x00name")}),
    Case("POST", "/keepalive", 422, "invalid node", kwargs={"json": node_info("evil\nnode")}),
    Case("POST", "/keepalive", 422, "invalid node", kwargs={"json": node_info("node\n")}),
    Case("POST", f"/bins/{KNOWN_BIN}", 422, "node name", kwargs={"json": report(nodeName="a b")}),
    Case(
        "POST",
        f"/bins/{KNOWN_BIN}/progress",
        422,
        "invalid node",
        kwargs={"json": progress(nodeName="a\rb")},
    ),
    Case("POST", f"/bins/{KNOWN_BIN}", 422, "sha256", kwargs={"json": report(sha256="abc")}),
    Case("POST", f"/bins/{KNOWN_BIN}", 400, "binName", kwargs={"json": report(binName="other")}),
    Case(
        "POST",
        f"/bins/{KNOWN_BIN}",
        422,
        "body",
        kwargs={"content": b"", "headers": {"Content-Type": "application/json"}},
    ),
    Case(
        "POST",
        f"/bins/{KNOWN_BIN}/progress",
        422,
        "status",
        kwargs={"json": progress(status="done")},
    ),
    Case(
        "POST",
        f"/bins/{KNOWN_BIN}/progress",
        422,
        "processingTime",
        kwargs={"json": progress(processingTime=-1)},
    ),
    Case(
        "POST",
        f"/bins/{KNOWN_BIN}/progress",
        422,
        "processingTime",
        kwargs={"json": progress(processingTime="soon")},
    ),
    Case(
        "POST",
        f"/bins/{KNOWN_BIN}/progress",
        400,
        "processingTime",
        kwargs={"json": progress(processingTime=2**70)},
    ),
    Case("POST", f"/admin/bins/{KNOWN_BIN}/pin", 422, "sha256", True, {"json": {"sha256": 12}}),
    Case(
        "POST",
        f"/admin/bins/{KNOWN_BIN}/pin",
        400,
        "JSON",
        True,
        {"content": b"]", "headers": {"Content-Type": "application/json"}},
    ),
    # uploads over the limit
    Case(
        "POST",
        f"/admin/bins/{KNOWN_BIN}/releases",
        413,
        "limit",
        True,
        {"content": b"x" * (MAX_UPLOAD + 1), "headers": OCTETS},
    ),
    Case(
        "POST",
        "/admin/bins/new-bin/releases",
        413,
        "limit",
        True,
        {"content": too_big, "headers": OCTETS},
    ),
    # tokens
    Case("GET", "/admin/bins", 401, "token"),
    Case("POST", f"/admin/bins/{KNOWN_BIN}/releases", 401, "token", kwargs={"content": b"new"}),
    Case(
        "POST",
        f"/admin/bins/{KNOWN_BIN}/pause",
        401,
        "token",
        kwargs={"headers": {"Authorization": "Bearer wrong-token-wrong-token"}},
    ),
    Case(
        "GET",
        "/admin/nodes",
        401,
        "token",
        kwargs={"headers": {"Authorization": "Basic YWRtaW46YWRtaW4="}},
    ),
]


@pytest.fixture(scope="module")
def seeded(server: BinManagerApp) -> BinManagerApp:
    """A known bin with one release and a known node that reported it."""
    server.publish(KNOWN_BIN, CONTENT)
    with server.client(base_url=server.api) as http:
        envelope(http.post("/keepalive", json=node_info(KNOWN_NODE)), 200)
        envelope(http.post(f"/bins/{KNOWN_BIN}", json=report()), 200)
    return server


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_is_refused_and_changes_nothing(seeded: BinManagerApp, case: Case) -> None:
    before = state(seeded)
    kwargs = dict(case.kwargs)
    headers = dict(kwargs.pop("headers", {}))
    if case.admin:
        headers = seeded.admin_headers | headers
    if callable(kwargs.get("content")):
        kwargs["content"] = kwargs["content"]()
    with seeded.client() as http:
        response = http.request(case.method, f"{seeded.api}{case.path}", headers=headers, **kwargs)
    body = envelope(response, case.status)
    assert case.says.lower() in body["message"].lower()
    assert set(body) == {"code", "message"}
    assert "Traceback" not in seeded.log()
    assert state(seeded) == before

"""Deleting a release: gone from every listing and download, its file removed unless shared;
refused (409, one message naming why) while it is latest, a paused rollout's answer, or
run by nodes. `bin-manager delete-release`: tests/integration/server/test_delete_release.py."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.answers import envelope, node_info, sha
from tests.support.inprocess import BinManagerApp


def artifact(server: BinManagerApp, digest: str) -> Path:
    return server.data_dir / "artifacts" / digest[:2] / digest


def delete(server: BinManagerApp, name: str, digest: str, **params: str) -> httpx.Response:
    with server.client() as http:
        return http.delete(
            f"{server.api}/admin/bins/{name}/releases/{digest}",
            params=params,
            headers=server.admin_headers,
        )


def release_shas(server: BinManagerApp, name: str) -> list[tuple[str, str]]:
    releases = envelope(server.admin_get(f"/bins/{name}/releases"), 200)["data"]
    return [(r["arch"], r["sha256"]) for r in releases]


def report_running(http: httpx.Client, name: str, node: str, digest: str) -> None:
    envelope(http.post("/keepalive", json=node_info(node)), 200)
    running = {"nodeName": node, "binName": name, "sha256": digest, "version": "latest"}
    envelope(http.post(f"/bins/{name}", json=running), 200)


def test_an_unused_release_is_deleted_with_its_artifact(
    server: BinManagerApp, http: httpx.Client, name: str
) -> None:
    old = f"{name} old build".encode()
    v1 = server.publish(name, old)
    v2 = server.publish(name, f"{name} new build".encode())
    assert artifact(server, v1).read_bytes() == old

    done = envelope(delete(server, name, v1), 200)["data"]
    assert done == {
        "binName": name,
        "arch": "x86_64",
        "sha256": v1,
        "size": len(old),
        "artifact": "removed",
    }
    assert release_shas(server, name) == [("x86_64", v2)]
    assert not artifact(server, v1).exists()
    envelope(http.get(f"/download/{name}", params={"sha256": v1}), 404)
    assert envelope(http.get(f"/bins/{name}"), 200)["data"]["sha256"] == v2
    newest = envelope(server.admin_get("/events"), 200)["data"][0]
    newest.pop("at")
    assert newest == {
        "kind": "delete",
        "binName": name,
        "arch": "x86_64",
        "sha256": v1,
        "detail": None,
    }
    # It is gone for good: no second delete, no pin back to it.
    assert "no release" in envelope(delete(server, name, v1), 404)["message"]
    with server.client() as admin:
        pin = admin.post(
            f"{server.api}/admin/bins/{name}/pin",
            json={"sha256": v1, "arch": "x86_64"},
            headers=server.admin_headers,
        )
    envelope(pin, 404)


def test_refused_while_latest_paused_or_running_and_nothing_changes(
    server: BinManagerApp, http: httpx.Client, name: str, node: str
) -> None:
    v1 = server.publish(name, f"{name} v1".encode())
    v2 = server.publish(name, f"{name} v2".encode())

    def refused(digest: str, *says: str) -> str:
        before = (release_shas(server, name), envelope(server.admin_get("/events"), 200))
        message: str = envelope(delete(server, name, digest), 409)["message"]
        assert message.startswith(f"cannot delete release {digest} of {name} (x86_64): ")
        for text in says:
            assert text in message
        assert (release_shas(server, name), envelope(server.admin_get("/events"), 200)) == before
        assert artifact(server, digest).is_file()
        assert http.get(f"/download/{name}", params={"sha256": digest}).status_code == 200
        return message

    # The latest (here v2, published) and a pinned one (v1) both answer every node.
    refused(v2, "it is the latest x86_64 release", "pin another release first")
    server.pin(name, v1)
    refused(v1, "pin another release first")
    server.pin(name, v2)

    # Nodes whose last report says they run v1: the count and the first five names.
    nodes = [f"{node}-{i}" for i in range(7)]
    for each in nodes:
        report_running(http, name, each, v1)
    message = refused(v1, "7 nodes last reported running it")
    assert f"({', '.join(nodes[:5])} and 2 more)" in message
    assert "latest" not in message
    for each in nodes:
        report_running(http, name, each, v2)

    # Paused while v2 was the latest: nodes that never reported are still told v2.
    server.pause(name)
    server.publish(name, f"{name} v3".encode())
    refused(v2, "paused rollout", f"resume {name} first")
    server.resume(name)
    # Reports still name v2: only the nodes stand in the way now.
    only_nodes = refused(v2, "7 nodes last reported running it")
    assert "latest" not in only_nodes
    assert "paused" not in only_nodes

    envelope(delete(server, name, v1), 200)
    assert [digest for _, digest in release_shas(server, name)] == [sha(f"{name} v3".encode()), v2]


def test_content_another_release_shares_stays_in_the_store(
    server: BinManagerApp, http: httpx.Client, name: str
) -> None:
    shared = f"{name} the same bytes for two bins and two arches".encode()
    digest = server.publish(name, shared)
    server.publish(name, shared, arch="aarch64")
    server.publish(f"{name}-b", shared)
    for arch in ("x86_64", "aarch64"):
        server.publish(name, f"{name} newer {arch}".encode(), arch=arch)

    ambiguous = envelope(delete(server, name, digest), 400)["message"]
    assert "aarch64 and x86_64" in ambiguous
    assert "arch" in ambiguous.rsplit(":", 1)[1]

    kept = envelope(delete(server, name, digest, arch="arm64"), 200)["data"]
    assert (kept["arch"], kept["artifact"]) == ("aarch64", "shared")
    kept = envelope(delete(server, name, digest, arch="x86_64"), 200)["data"]
    assert (kept["arch"], kept["artifact"]) == ("x86_64", "shared")
    assert digest not in [d for _, d in release_shas(server, name)]
    assert artifact(server, digest).read_bytes() == shared
    assert http.get(f"/download/{name}-b", params={"sha256": digest}).content == shared


def test_unknown_or_malformed_is_refused_without_a_change(
    server: BinManagerApp, http: httpx.Client, name: str
) -> None:
    digest = server.publish(name, f"{name} only".encode())
    other = sha(b"never published")
    assert "unknown bin" in envelope(delete(server, f"{name}-x", digest), 404)["message"]
    assert other in envelope(delete(server, name, other), 404)["message"]
    assert "aarch64" in envelope(delete(server, name, digest, arch="aarch64"), 404)["message"]
    assert "invalid sha256" in envelope(delete(server, name, "abc"), 400)["message"]
    assert "unknown cpu arch" in envelope(delete(server, name, other, arch="sparc"), 400)["message"]
    anonymous = http.delete(f"/admin/bins/{name}/releases/{digest}")
    envelope(anonymous, 401)
    assert release_shas(server, name) == [("x86_64", digest)]
    assert artifact(server, digest).is_file()


def test_a_release_withdrawn_by_a_pin_in_force_is_not_deleted(
    bin_manager_app: BinManagerApp,
) -> None:
    sha1 = bin_manager_app.publish("svc", b"v1\n")
    sha2 = bin_manager_app.publish("svc", b"v2\n")
    bin_manager_app.pin("svc", sha1)  # v2 is now withdrawn: agents must keep being told
    refused = delete(bin_manager_app, "svc", sha2)
    assert refused.status_code == 409, refused.text
    assert "withdrawn by the pin in force" in refused.json()["message"]
    bin_manager_app.publish("svc", b"v3\n")  # the pin is over: v2 may go
    assert delete(bin_manager_app, "svc", sha2).status_code == 200

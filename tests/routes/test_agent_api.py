"""The agent endpoints (docs/api.md), answering the original design's requests and shapes."""

from __future__ import annotations

import httpx

from tests.support.answers import envelope, node_info, sha
from tests.support.inprocess import BinManagerApp

V1 = b"\x7fELF version one" * 100
V2 = b"\x7fELF version two" * 100
ARM = b"\x7fELF aarch64 build" * 100


def test_keepalive_registers_and_reports_a_node(
    server: BinManagerApp, http: httpx.Client, node: str
) -> None:
    unknown = envelope(http.get("/keepalive", params={"nodeName": node}), 404)
    assert node in unknown["message"]

    registered = envelope(http.post("/keepalive", json=node_info(node)), 200)
    assert registered == {"code": 0, "message": "success"}
    body = envelope(http.get("/keepalive", params={"nodeName": node}), 200)
    assert body["data"] == {"nodeName": node, "status": "active"}

    update = node_info(node) | {"osRelease": "Debian GNU/Linux 12", "binProxyVersion": "2.0"}
    envelope(http.post("/keepalive", json=update), 200)
    detail = envelope(server.admin_get(f"/nodes/{node}"), 200)["data"]
    assert detail["osRelease"] == "Debian GNU/Linux 12"
    assert detail["binProxyVersion"] == "2.0"
    assert detail["firstSeen"] <= detail["lastSeen"]
    listed = [n for n in envelope(server.admin_get("/nodes"), 200)["data"] if n["nodeName"] == node]
    assert len(listed) == 1


def test_get_bin_answers_the_latest_sha_per_arch(
    server: BinManagerApp, http: httpx.Client, name: str, node: str
) -> None:
    v1 = server.publish(name, V1)
    body = envelope(http.get(f"/bins/{name}"), 200)
    assert body["data"] == {"sha256": v1, "version": "latest"}
    assert http.get(f"/bins/{name}").headers["cache-control"] == "no-store"

    missing = envelope(http.get(f"/bins/{name}", params={"arch": "aarch64"}), 404)
    assert "aarch64" in missing["message"]
    arm = server.publish(name, ARM, arch="arm64")
    for alias in ("aarch64", "arm64", "ARM64"):
        data = envelope(http.get(f"/bins/{name}", params={"arch": alias}), 200)["data"]
        assert data["sha256"] == arm
    assert (
        envelope(http.get(f"/bins/{name}", params={"arch": "amd64"}), 200)["data"]["sha256"] == v1
    )

    # No arch: the node's registered arch decides; unknown nodes get x86_64.
    envelope(http.post("/keepalive", json=node_info(node, arch="aarch64")), 200)
    mine = envelope(http.get(f"/bins/{name}", params={"nodeName": node}), 200)["data"]
    assert mine["sha256"] == arm
    other = envelope(http.get(f"/bins/{name}", params={"nodeName": node + "x"}), 200)["data"]
    assert other["sha256"] == v1


def test_reports_and_progress_are_kept_as_history(
    server: BinManagerApp, http: httpx.Client, name: str, node: str
) -> None:
    v1 = server.publish(name, V1)
    v2 = server.publish(name, V2)
    envelope(http.post("/keepalive", json=node_info(node)), 200)
    for status, seconds in (("in_progress", 3), ("success", 12)):
        report = {
            "nodeName": node,
            "binName": name,
            "targetHash": v2,
            "processingTime": seconds,
            "status": status,
        }
        assert envelope(http.post(f"/bins/{name}/progress", json=report), 200) == {
            "code": 0,
            "message": "success",
        }
    for version in (v1, v2):
        running = {"nodeName": node, "binName": name, "sha256": version, "version": "latest"}
        envelope(http.post(f"/bins/{name}", json=running), 200)

    who = envelope(server.admin_get(f"/bins/{name}/nodes"), 200)["data"]
    assert [(n["nodeName"], n["sha256"]) for n in who] == [(node, v2)]
    progress = envelope(server.admin_get(f"/bins/{name}/progress"), 200)["data"]
    assert [(p["status"], p["processingTime"]) for p in progress] == [
        ("success", 12),
        ("in_progress", 3),
    ]
    detail = envelope(server.admin_get(f"/nodes/{node}"), 200)["data"]
    assert [(b["binName"], b["sha256"]) for b in detail["bins"]] == [(name, v2)]
    assert [r["sha256"] for r in detail["reports"]] == [v2, v1]
    assert [p["targetHash"] for p in detail["progress"]] == [v2, v2]


def test_downloads_stream_exact_content_with_cache_semantics(
    server: BinManagerApp, http: httpx.Client, name: str
) -> None:
    v1 = server.publish(name, V1)
    v2 = server.publish(name, V2)

    latest = http.get(f"/download/{name}")
    assert latest.status_code == 200
    assert latest.content == V2
    assert latest.headers["content-length"] == str(len(V2))
    assert latest.headers["etag"] == f'"{v2}"'
    assert latest.headers["cache-control"] == "no-store"
    assert latest.headers["content-type"] == "application/octet-stream"

    exact = http.get(f"/download/{name}", params={"sha256": v1})
    assert exact.status_code == 200
    assert exact.content == V1
    assert exact.headers["etag"] == f'"{v1}"'
    assert exact.headers["cache-control"] == "public, max-age=31536000, immutable"
    head = http.head(f"/download/{name}", params={"sha256": v1})
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(V1))
    unknown = envelope(http.get(f"/download/{name}", params={"sha256": sha(b"other")}), 404)
    assert sha(b"other") in unknown["message"]

    fallback = http.get(f"/releases/latest/{name}/download")
    assert (fallback.status_code, fallback.content) == (200, V2)
    assert fallback.headers["cache-control"] == "no-store"
    pointer = http.get(f"/releases/latest/{name}/sha256")
    assert (pointer.status_code, pointer.text) == (200, v2)
    assert pointer.headers["content-type"].startswith("text/plain")
    assert pointer.headers["cache-control"] == "no-store"


def test_downloads_answer_ranges_and_conditional_requests(
    server: BinManagerApp, http: httpx.Client, name: str
) -> None:
    v1 = server.publish(name, V1)
    url = f"/download/{name}"
    params = {"sha256": v1}

    part = http.get(url, params=params, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == V1[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(V1)}"
    tail = http.get(url, params=params, headers={"Range": "bytes=1000-"})
    assert (tail.status_code, tail.content) == (206, V1[1000:])

    beyond = http.get(url, params=params, headers={"Range": f"bytes={len(V1)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(V1)}"

    same = http.get(url, params=params, headers={"Range": "bytes=0-9", "If-Range": f'"{v1}"'})
    assert (same.status_code, same.content) == (206, V1[:10])
    changed = http.get(url, params=params, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert (changed.status_code, changed.content) == (200, V1)
    garbage = http.get(url, params=params, headers={"Range": "pages=1-2"})
    assert (garbage.status_code, garbage.content) == (200, V1)

    cached = http.get(url, params=params, headers={"If-None-Match": f'"{v1}"'})
    assert cached.status_code == 304
    assert cached.content == b""


def test_pin_rolls_the_fleet_back_and_republish_moves_forward(
    server: BinManagerApp, http: httpx.Client, name: str
) -> None:
    v1 = server.publish(name, V1)
    v2 = server.publish(name, V2)
    server.pin(name, v1)
    assert envelope(http.get(f"/bins/{name}"), 200)["data"]["sha256"] == v1
    assert http.get(f"/download/{name}").content == V1
    assert http.get(f"/releases/latest/{name}/sha256").text == v1

    assert server.publish(name, V2) == v2  # same content again: idempotent, latest again
    assert envelope(http.get(f"/bins/{name}"), 200)["data"]["sha256"] == v2
    releases = envelope(server.admin_get(f"/bins/{name}/releases"), 200)["data"]
    assert sorted((r["sha256"], r["latest"]) for r in releases) == sorted([(v1, False), (v2, True)])
    assert {r["size"] for r in releases} == {len(V1), len(V2)}
    kinds = [e["kind"] for e in envelope(server.admin_get("/events"), 200)["data"]]
    assert kinds[:4] == ["publish", "pin", "publish", "publish"]


def test_pause_keeps_every_node_where_it_is(
    server: BinManagerApp, http: httpx.Client, name: str, node: str
) -> None:
    v1 = server.publish(name, V1)
    envelope(http.post("/keepalive", json=node_info(node)), 200)
    report = {"nodeName": node, "binName": name, "sha256": v1, "version": "latest"}
    envelope(http.post(f"/bins/{name}", json=report), 200)
    v2 = server.publish(name, V2)

    server.pause(name)
    v3 = server.publish(name, V1 + V2)
    ask = {"nodeName": node}
    assert envelope(http.get(f"/bins/{name}", params=ask), 200)["data"]["sha256"] == v1
    assert http.get(f"/download/{name}", params=ask).content == V1
    newcomer = {"nodeName": node + "-new"}
    assert envelope(http.get(f"/bins/{name}", params=newcomer), 200)["data"]["sha256"] == v2
    listed = [b for b in envelope(server.admin_get("/bins"), 200)["data"] if b["binName"] == name]
    assert listed[0]["paused"] is True

    server.resume(name)
    assert envelope(http.get(f"/bins/{name}", params=ask), 200)["data"]["sha256"] == v3
    assert envelope(http.get(f"/bins/{name}", params=newcomer), 200)["data"]["sha256"] == v3
    kinds = [e["kind"] for e in envelope(server.admin_get("/events"), 200)["data"]]
    assert kinds[:3] == ["resume", "publish", "pause"]


def test_operations_endpoints(
    server: BinManagerApp, http: httpx.Client, name: str, node: str
) -> None:
    v1 = server.publish(name, V1)
    envelope(http.post("/keepalive", json=node_info(node)), 200)
    report = {"nodeName": node, "binName": name, "sha256": v1, "version": "latest"}
    envelope(http.post(f"/bins/{name}", json=report), 200)
    with server.client() as plain:
        health = envelope(plain.get(f"{server.url}/healthz"), 200)
        assert health["data"] == {"status": "ok"}
        metrics = plain.get(f"{server.url}/metrics", headers=server.admin_headers)
        assert plain.get(f"{server.url}/openapi.json").json()["info"]["title"] == "bin-manager"
        assert plain.get(f"{server.url}/docs").status_code == 200
    assert metrics.status_code == 200
    text = metrics.text
    assert f'bin_manager_bin_nodes{{bin="{name}",sha256="{v1}"}} 1.0' in text
    assert "bin_manager_nodes " in text
    assert 'route="/api/v1/bins/{bin_name}",status="200"' in text
    assert 'route="/api/v1/keepalive",status="200"' in text


V3 = b"\x7fELF version three" * 100
V4 = b"\x7fELF version four" * 100


def _batch(http: httpx.Client, node: str | None = None) -> httpx.Response:
    params = {"arch": "x86_64"} | ({"nodeName": node} if node else {})
    response = http.get("/bins", params=params)
    assert response.status_code == 200, response.text
    return response


def test_a_pin_withdraws_the_newer_releases_until_a_publish(
    server: BinManagerApp, http: httpx.Client, name: str
) -> None:
    v1 = server.publish(name, V1)
    v2 = server.publish(name, V2)
    v3 = server.publish(name, V3)
    arm = server.publish(name, ARM, arch="aarch64")
    # Nothing pinned: the answers of the original design, without the field.
    assert envelope(http.get(f"/bins/{name}"), 200)["data"] == {"sha256": v3, "version": "latest"}
    before = _batch(http)
    assert name not in before.json()["data"].get("withdrawn", {})

    server.pin(name, v1)  # a fleet-wide rollback past v2 and v3
    data = envelope(http.get(f"/bins/{name}", params={"arch": "x86_64"}), 200)["data"]
    assert data == {"sha256": v1, "version": "latest", "withdrawn": [v3, v2]}
    pinned = _batch(http)
    assert pinned.json()["data"]["bins"][name] == v1
    assert pinned.json()["data"]["withdrawn"][name] == [v3, v2]
    assert pinned.headers["etag"] != before.headers["etag"]
    # Per arch: the aarch64 latest was not pinned away from anything.
    other = envelope(http.get(f"/bins/{name}", params={"arch": "aarch64"}), 200)["data"]
    assert other == {"sha256": arm, "version": "latest"}

    server.pin(name, v2)
    data = envelope(http.get(f"/bins/{name}"), 200)["data"]
    assert data == {"sha256": v2, "version": "latest", "withdrawn": [v3]}

    assert server.publish(name, V3) == v3  # published again: the latest, nothing newer
    assert envelope(http.get(f"/bins/{name}"), 200)["data"] == {"sha256": v3, "version": "latest"}
    assert name not in _batch(http).json()["data"].get("withdrawn", {})

    server.pin(name, v1)
    v4 = server.publish(name, V4)  # a new release moves the latest past every withdrawn one
    assert envelope(http.get(f"/bins/{name}"), 200)["data"] == {"sha256": v4, "version": "latest"}
    assert name not in _batch(http).json()["data"].get("withdrawn", {})


def test_a_paused_node_is_never_told_its_release_is_withdrawn(
    server: BinManagerApp, http: httpx.Client, name: str, node: str
) -> None:
    v1 = server.publish(name, V1)
    v2 = server.publish(name, V2)
    envelope(http.post("/keepalive", json=node_info(node)), 200)
    report = {"nodeName": node, "binName": name, "sha256": v2, "version": "latest"}
    envelope(http.post(f"/bins/{name}", json=report), 200)
    server.pause(name)
    v3 = server.publish(name, V3)
    server.pin(name, v1)  # while paused: the node stays on v2, which the pin withdrew

    ask = {"nodeName": node, "arch": "x86_64"}
    data = envelope(http.get(f"/bins/{name}", params=ask), 200)["data"]
    assert data == {"sha256": v2, "version": "latest", "withdrawn": [v3]}
    batch = _batch(http, node).json()["data"]
    assert (batch["bins"][name], batch["withdrawn"][name]) == (v2, [v3])
    newcomer = envelope(http.get(f"/bins/{name}", params={"nodeName": node + "-new"}), 200)
    assert newcomer["data"] == {"sha256": v2, "version": "latest", "withdrawn": [v3]}

    server.resume(name)
    data = envelope(http.get(f"/bins/{name}", params=ask), 200)["data"]
    assert data == {"sha256": v1, "version": "latest", "withdrawn": [v3, v2]}


def _progress(name: str, node: str, target: str, **extra: object) -> dict[str, object]:
    return {
        "nodeName": node,
        "binName": name,
        "targetHash": target,
        "processingTime": 4,
        "status": "failed",
    } | extra


def test_a_progress_reason_is_kept_and_listed(
    server: BinManagerApp, http: httpx.Client, name: str, node: str
) -> None:
    v1 = server.publish(name, V1)
    envelope(http.post("/keepalive", json=node_info(node)), 200)
    why = "inspector: alerts: firing HighErrorRate"
    for report in (
        _progress(name, node, v1, status="success"),  # an agent that says nothing
        _progress(name, node, v1, reason="   "),  # blank: no reason
        _progress(name, node, v1, reason=f"  {why}  "),  # stripped
        _progress(name, node, v1, reason="é" * 300),  # at the limit, in characters
    ):
        envelope(http.post(f"/bins/{name}/progress", json=report), 200)

    detail = envelope(server.admin_get(f"/nodes/{node}"), 200)["data"]
    assert [p["reason"] for p in detail["progress"]] == ["é" * 300, why, None, None]
    listed = envelope(server.admin_get(f"/bins/{name}/progress"), 200)["data"]
    assert [p["reason"] for p in listed] == ["é" * 300, why, None, None]


def test_a_reason_longer_than_300_or_not_one_line_is_refused(
    server: BinManagerApp, http: httpx.Client, name: str, node: str
) -> None:
    v1 = server.publish(name, V1)
    envelope(http.post("/keepalive", json=node_info(node)), 200)
    for reason in (
        "x" * 301,
        "watch: web is BACKOFF\nafter restart",
        "tab\there",
        "escape \x1b[31m red",
        "bidi \u202e override",
        "line\u2028separator",
        12,
    ):
        refused = envelope(
            http.post(f"/bins/{name}/progress", json=_progress(name, node, v1, reason=reason)), 422
        )
        assert "body.reason" in refused["message"], reason
    assert envelope(server.admin_get(f"/nodes/{node}"), 200)["data"]["progress"] == []

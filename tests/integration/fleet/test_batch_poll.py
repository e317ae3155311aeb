"""GET /api/v1/bins: every bin's sha256 in one request, ETag/304, pause per node."""

from __future__ import annotations

import httpx

from tests.support.server import BinManager


def _register(bm: BinManager, http: httpx.Client, node: str, arch: str = "x86_64") -> None:
    info = {"nodeName": node, "cpuArch": arch, "osRelease": "test", "binProxyVersion": "1"}
    assert http.post(f"{bm.api}/keepalive", json=info).json()["code"] == 0


def _report(bm: BinManager, http: httpx.Client, node: str, name: str, sha: str) -> None:
    body = {"nodeName": node, "binName": name, "sha256": sha, "version": "latest"}
    assert http.post(f"{bm.api}/bins/{name}", json=body).json()["code"] == 0


def _batch(
    bm: BinManager, http: httpx.Client, node: str, arch: str = "x86_64", etag: str | None = None
) -> httpx.Response:
    headers = {"If-None-Match": etag} if etag else {}
    return http.get(f"{bm.api}/bins", params={"nodeName": node, "arch": arch}, headers=headers)


def test_batch_answers_every_bin_and_304_while_unchanged(bin_manager: BinManager) -> None:
    bm = bin_manager
    sha_a = bm.publish("alpha", b"alpha 1")
    sha_b = bm.publish("beta", b"beta 1")
    sha_c = bm.publish("gamma", b"gamma arm", arch="aarch64")
    with bm.client() as http:
        _register(bm, http, "n1")
        first = _batch(bm, http, "n1")
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["code"] == 0
        assert body["data"] == {"arch": "x86_64", "bins": {"alpha": sha_a, "beta": sha_b}}
        etag = first.headers["ETag"]

        same = _batch(bm, http, "n1", etag=etag)
        assert same.status_code == 304
        assert same.content == b""
        assert same.headers["ETag"] == etag

        sha_a2 = bm.publish("alpha", b"alpha 2")
        changed = _batch(bm, http, "n1", etag=etag)
        assert changed.status_code == 200
        assert changed.json()["data"]["bins"] == {"alpha": sha_a2, "beta": sha_b}
        assert changed.headers["ETag"] != etag

        arm = _batch(bm, http, "n1", arch="arm64")
        assert arm.json()["data"] == {"arch": "aarch64", "bins": {"gamma": sha_c}}
        bad = _batch(bm, http, "n1", arch="sparc")
        assert bad.status_code == 400
        assert "unknown cpu arch 'sparc'" in bad.json()["message"]


def test_batch_honours_pause_per_node_and_pin(bin_manager: BinManager) -> None:
    bm = bin_manager
    old = bm.publish("app", b"app 1")
    other = bm.publish("tool", b"tool 1")
    with bm.client() as http:
        for node in ("early", "late"):
            _register(bm, http, node)
        _report(bm, http, "early", "app", old)
        bm.pause("app")
        new = bm.publish("app", b"app 2")
        # While paused nobody moves: a node keeps what it runs, a new node gets the frozen one.
        assert _batch(bm, http, "early").json()["data"]["bins"] == {"app": old, "tool": other}
        assert _batch(bm, http, "late").json()["data"]["bins"] == {"app": old, "tool": other}
        _report(bm, http, "late", "app", new)  # installed by hand: kept while paused
        assert _batch(bm, http, "late").json()["data"]["bins"]["app"] == new
        assert _batch(bm, http, "early").json()["data"]["bins"]["app"] == old

        bm.resume("app")
        for node in ("early", "late"):
            assert _batch(bm, http, node).json()["data"]["bins"] == {"app": new, "tool": other}
        bm.pin("app", old)  # fleet-wide rollback
        for node in ("early", "late"):
            assert _batch(bm, http, node).json()["data"]["bins"] == {"app": old, "tool": other}

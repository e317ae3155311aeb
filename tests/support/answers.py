"""Assertions and data shared by the bin-manager's endpoint suites: the route tests in this
process (tests/routes/) and those against a real server (tests/integration/server/)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from tests.support.admin import AdminCalls

MAX_UPLOAD = 1024 * 1024
REPORTED_SHA = "c" * 64  # a release the credential tests report about


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def node_info(node_name: str, arch: str = "x86_64") -> dict[str, str]:
    return {
        "cpuArch": arch,
        "osRelease": "Ubuntu 20.04.3 LTS",
        "nodeName": node_name,
        "binProxyVersion": "1.1.0",
    }


def bearer_header(token: str | None) -> dict[str, str]:
    """The Authorization header of `token` (none for None)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def enrol(
    http: httpx.Client, name: str, node_token: str | None, auth: str | None = None
) -> httpx.Response:
    """POST /enrol for `name` showing `node_token`, with `auth` (e.g. the enrolment token)."""
    body: dict[str, Any] = node_info(name)
    if node_token is not None:
        body["nodeToken"] = node_token
    return http.post("/enrol", json=body, headers=bearer_header(auth))


def writes(http: httpx.Client, name: str, token: str | None) -> list[int]:
    """POST /keepalive, progress and report about `name`, and GET /keepalive: statuses."""
    headers = bearer_header(token)
    forged = {**node_info(name), "osRelease": "forged"}
    progress = {"nodeName": name, "binName": "app", "targetHash": REPORTED_SHA, "processingTime": 1,
                "status": "failed"}  # fmt: skip
    report = {"nodeName": name, "binName": "app", "sha256": REPORTED_SHA}
    return [
        http.post("/keepalive", json=forged, headers=headers).status_code,
        http.post("/bins/app/progress", json=progress, headers=headers).status_code,
        http.post("/bins/app", json=report, headers=headers).status_code,
        http.get("/keepalive", params={"nodeName": name}, headers=headers).status_code,
    ]


def envelope(response: httpx.Response, status: int) -> dict[str, Any]:
    """The JSON envelope of `response`, checked against `status`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    if status == 200:
        assert body["code"] == 0
        assert body["message"] == "success"
    else:
        assert body["code"] == status
        assert isinstance(body["message"], str)
        assert body["message"]
    return body


def state(server: AdminCalls) -> dict[str, Any]:
    """Everything an operator can see, plus the files in the store: for 'nothing changed'."""
    bins = server.admin_get("/bins").json()["data"]
    nodes = server.admin_get("/nodes").json()["data"]
    events = server.admin_get("/events").json()["data"]
    details = {
        b["binName"]: (
            server.admin_get(f"/bins/{b['binName']}/releases").json()["data"],
            server.admin_get(f"/bins/{b['binName']}/nodes").json()["data"],
            server.admin_get(f"/bins/{b['binName']}/progress").json()["data"],
        )
        for b in bins
    }
    node_details = {
        n["nodeName"]: server.admin_get(f"/nodes/{n['nodeName']}").json() for n in nodes
    }
    for detail in node_details.values():
        detail["data"].pop("lastSeen")
    for n in nodes:
        n.pop("lastSeen")
    files = sorted(str(p.relative_to(server.data_dir)) for p in _artifact_files(server.data_dir))
    return {
        "bins": bins,
        "nodes": nodes,
        "events": events,
        "details": details,
        "node_details": node_details,
        "files": files,
    }


def _artifact_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "artifacts").rglob("*") if p.is_file()]

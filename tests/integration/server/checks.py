"""Assertions and fixtures' data shared by the bin-manager endpoint suites."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import BinManager

MAX_UPLOAD = 1024 * 1024


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def node_info(node_name: str, arch: str = "x86_64") -> dict[str, str]:
    return {
        "cpuArch": arch,
        "osRelease": "Ubuntu 20.04.3 LTS",
        "nodeName": node_name,
        "binProxyVersion": "1.1.0",
    }


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


def state(server: BinManager) -> dict[str, Any]:
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

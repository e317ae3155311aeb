"""Two bin-managers on one PostgreSQL behind nginx: balanced polls, nginx-served downloads."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from tests.integration.fleet.conftest import Replicas
from tests.support.nginx import NginxProxy
from tests.support.server import BinManager


def _served(server: BinManager, path: str) -> int:
    """How many requests for `path` this server logged."""
    count = 0
    for line in server.service.log().splitlines():
        start = line.find('{"ts"')
        if start >= 0 and json.loads(line[start:])["path"] == path:
            count += 1
    return count


def test_replicas_share_the_fleet_and_nginx_sends_the_files(
    postgres_url: str,
    replicas: Replicas,
    nginx_factory: Callable[[list[BinManager]], NginxProxy],
) -> None:
    first, second = replicas(postgres_url, 2)
    nginx = nginx_factory([first, second])
    content = b"\x7fELF fleet binary " * 4096
    with httpx.Client(timeout=30, headers=first.admin_headers) as http:
        published = http.post(
            f"{nginx.api}/admin/bins/app/releases",
            params={"arch": "x86_64"},
            content=content,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert published.status_code == 200, published.text
        sha = published.json()["data"]["sha256"]

        info = {"nodeName": "n1", "cpuArch": "x86_64", "osRelease": "t", "binProxyVersion": "1"}
        assert http.post(f"{nginx.api}/keepalive", json=info).status_code == 200
        for _ in range(20):
            polled = http.get(f"{nginx.api}/bins", params={"nodeName": "n1", "arch": "x86_64"})
            assert polled.json()["data"]["bins"] == {"app": sha}
        assert _served(first, "/api/v1/bins") > 0
        assert _served(second, "/api/v1/bins") > 0

        # A replica answers a download with only a header; nginx sends the shared file.
        direct = http.get(f"{second.api}/download/app", params={"sha256": sha})
        assert direct.headers["X-Accel-Redirect"] == f"/_artifacts/{sha[:2]}/{sha}"
        assert direct.content == b""
        for _ in range(2):  # whichever replica answers
            whole = http.get(f"{nginx.api}/download/app", params={"sha256": sha})
            assert whole.status_code == 200
            assert whole.content == content
            assert "X-Accel-Redirect" not in whole.headers
        latest = http.get(f"{nginx.api}/download/app", params={"nodeName": "n1", "arch": "x86_64"})
        assert latest.content == content
        part = http.get(
            f"{nginx.api}/download/app", params={"sha256": sha}, headers={"Range": "bytes=4-9"}
        )
        assert part.status_code == 206
        assert part.content == content[4:10]

        # What one replica records, the other serves: the database is the shared state.
        report = {"nodeName": "n1", "binName": "app", "sha256": sha, "version": "latest"}
        assert http.post(f"{first.api}/bins/app", json=report).status_code == 200
        detail = http.get(f"{second.api}/admin/nodes/n1").json()["data"]
        assert [(b["binName"], b["sha256"]) for b in detail["bins"]] == [("app", sha)]

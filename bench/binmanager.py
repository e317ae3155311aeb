"""The real bin-manager for the benchmarks: `bin-manager serve` on loopback with a random
admin token, and releases published through its admin HTTP endpoint."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from tests.support.procs import LOOPBACK, Service, free_port, http_ok, wait_until

from bench.harness import MIB, VENV_BIN, Workspace, env_with, sha256_file

API = "/api/v1"
ARCH = "x86_64"


class BinManager:
    """`bin-manager serve --port P --data-dir D` with BIN_MANAGER_ADMIN_TOKEN set."""

    def __init__(self, workspace: Workspace, name: str = "bin-manager", workers: int = 1) -> None:
        self.port = free_port()
        self.name = name
        self.workers = workers
        self.data_dir = workspace.path(name)
        self.token = secrets.token_hex(16)  # 32 characters
        self._workspace = workspace
        self._service: Service | None = None

    @property
    def pid(self) -> int:
        assert self._service is not None, "not started"
        return self._service.pid

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}{API}"

    def start(self) -> BinManager:
        argv = [
            str(VENV_BIN / "bin-manager"),
            "serve",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--workers",
            str(self.workers),
        ]
        env = env_with(BIN_MANAGER_ADMIN_TOKEN=self.token)
        self._service = self._workspace.start(self.name, argv, env=env)
        wait_until(self._up, 30, "bin-manager serve to answer /healthz")
        return self

    def stop(self) -> None:
        """SIGTERM (every worker process with it), as the workspace would at the end."""
        assert self._service is not None, "not started"
        self._service.stop(timeout=10)

    def _up(self) -> bool:
        assert self._service is not None
        if not self._service.running():
            raise RuntimeError(f"bin-manager exited at start:\n{self._service.log()}")
        return http_ok(f"{self.url}/healthz")

    def publish(self, name: str, artifact: Path) -> str:
        """Publish `artifact` as the latest release of `name`; returns its sha256."""
        expected = sha256_file(artifact)

        def chunks() -> Iterator[bytes]:
            with artifact.open("rb") as handle:
                while chunk := handle.read(4 * MIB):
                    yield chunk

        answer = httpx.post(
            f"{self.api}/admin/bins/{name}/releases",
            params={"arch": ARCH},
            content=chunks(),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/octet-stream",
                "Content-Length": str(artifact.stat().st_size),
            },
            timeout=120,
        )
        if answer.status_code >= 300:
            raise RuntimeError(f"publish {name}: HTTP {answer.status_code} {answer.text}")
        latest = self.latest(name)
        if latest != expected:
            raise RuntimeError(f"publish {name}: server answers {latest}, expected {expected}")
        return expected

    def latest(self, name: str) -> str:
        body = self.get_json(f"{API}/bins/{name}", nodeName="bench-node", arch=ARCH)
        sha: str = body["data"]["sha256"]
        return sha

    def get_bytes(self, path: str, **params: str) -> bytes:
        answer = httpx.get(f"{self.url}{path}", params=params, timeout=10)
        answer.raise_for_status()
        return answer.content

    def get_json(self, path: str, **params: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}{path}", params=params, timeout=10)
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

"""The admin calls a test makes of a bin-manager, whichever way it is served: publish, pin,
pause, resume, proxies and credentials, over the server's own `client()`.

`BinManager` (tests/support/server.py, a real `bin-manager serve`) and `BinManagerApp`
(tests/support/inprocess.py, the app in this process) both have them, so a test reads the
same against either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


class AdminCalls:
    """Helpers over `client()`: what an operator's admin token does, checked."""

    url: str  # scheme://host:port, no path
    api: str  # url + /api/v1
    admin_token: str
    agent_token: str | None
    enrolment_token: str | None  # BIN_MANAGER_ENROLMENT_TOKEN (None: enrolment needs approval)
    data_dir: Path  # the server's --data-dir: the SQLite file and the artifact store

    def client(self, **kwargs: Any) -> httpx.Client:
        """A new client for this server (close it, or use `with`)."""
        raise NotImplementedError

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def agent_headers(self) -> dict[str, str]:
        """Headers an agent needs (empty when no agent token is configured)."""
        return {"Authorization": f"Bearer {self.agent_token}"} if self.agent_token else {}

    def _admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("http") else f"{self.api}/admin{path}"
        if path.startswith("/api/"):
            url = f"{self.url}{path}"
        headers = {**self.admin_headers, **kwargs.pop("headers", {})}
        with self.client() as http:
            return http.request(method, url, headers=headers, **kwargs)

    def admin_get(self, path: str) -> httpx.Response:
        """GET `path` under /api/v1/admin (e.g. "/bins/hello/nodes") with the admin token."""
        return self._admin("GET", path)

    def _checked(self, response: httpx.Response) -> Any:
        assert response.status_code == 200, f"{response.status_code}: {response.text}"
        body = response.json()
        assert body["code"] == 0, body
        return body.get("data")

    def publish(
        self, name: str, content: bytes | Path, arch: str = "x86_64", timeout: float = 30
    ) -> str:
        """Publish `content` (bytes, or a file streamed) as the latest `name` for `arch`;
        returns its sha256."""
        headers = {"Content-Type": "application/octet-stream"}
        if isinstance(content, Path):
            with content.open("rb") as handle:
                expected = hashlib.file_digest(handle, "sha256").hexdigest()
            headers["Content-Length"] = str(content.stat().st_size)
            body: bytes | Iterator[bytes] = _chunks(content)
        else:
            expected = hashlib.sha256(content).hexdigest()
            body = content
        data = self._checked(
            self._admin(
                "POST",
                f"/bins/{name}/releases",
                params={"arch": arch},
                content=body,
                headers=headers,
                timeout=timeout,
            )
        )
        sha: str = data["sha256"]
        assert sha == expected
        return sha

    def pin(self, name: str, sha: str, arch: str = "x86_64") -> None:
        """Make an earlier release the latest (fleet-wide rollback)."""
        self._checked(self._admin("POST", f"/bins/{name}/pin", json={"sha256": sha, "arch": arch}))

    def create_proxy(self, name: str) -> str:
        """A cluster proxy's token (shown once by the server)."""
        token: str = self._checked(self._admin("POST", "/proxies", json={"name": name}))["token"]
        return token

    def credential(self, node_name: str) -> dict[str, Any]:
        """What the server holds for a node name: status, fingerprint, pending request."""
        data: dict[str, Any] = self._checked(self.admin_get(f"/credentials/{node_name}"))
        return data

    def pause(self, name: str) -> None:
        self._checked(self._admin("POST", f"/bins/{name}/pause"))

    def resume(self, name: str) -> None:
        self._checked(self._admin("POST", f"/bins/{name}/resume"))


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            yield chunk

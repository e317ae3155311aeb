"""The bin-manager API (SPEC §4) over one reused httpx.Client.

Owns every HTTP call of the agent: keepalive, latest sha256, progress and version
reports. Network errors, timeouts, 5xx and garbage answers become RetryableError.
The bearer token lives in the client's headers and is never logged.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from ansible_proxy.errors import ConfigError, RetryableError
from ansible_proxy.names import is_sha256


class UnknownBin(RetryableError):
    """The bin-manager has nothing published under this name (yet)."""


def make_client(
    urls: list[str],
    token: str,
    ca_bundle: Path | None,
    insecure: bool,
    timeout: float,
) -> httpx.Client:
    """One client for the whole tick; redirects to another host or scheme are refused."""
    origins = {httpx.URL(u).copy_with(path="/", query=None).netloc for u in urls}
    schemes = {httpx.URL(u).scheme for u in urls}

    def refuse_foreign_redirect(request: httpx.Request) -> None:
        if request.url.netloc not in origins or request.url.scheme not in schemes:
            raise RetryableError(f"refused a redirect to another host: {request.url.host}")

    verify: ssl.SSLContext | bool
    if insecure:
        verify = False
    elif "https" not in schemes:
        # No TLS can happen (redirects may not change scheme): skip building a context.
        verify = False
    else:
        try:
            verify = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"CA_BUNDLE {ca_bundle}: {exc}") from None
    headers = {"User-Agent": "ansible-proxy"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(
        headers=headers,
        verify=verify,
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        max_redirects=5,
        event_hooks={"request": [refuse_foreign_redirect]},
    )


class Api:
    """Calls of SPEC §4, each translating failures into our errors."""

    def __init__(self, client: httpx.Client, base: str, node_name: str, arch: str) -> None:
        self.client = client
        self.base = base.rstrip("/")
        self.node_name = node_name
        self.arch = arch

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.base}{path}"
        try:
            return self.client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise RetryableError(f"API {method} {path}: timed out") from None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise RetryableError(f"API {method} {path}: unreachable: {reason}") from None

    def _data(self, response: httpx.Response, what: str) -> Any:
        if response.status_code >= 300:
            raise RetryableError(f"API {what}: HTTP {response.status_code}: {_message(response)}")
        try:
            body = response.json()
        except ValueError:
            raise RetryableError(f"API {what}: answer is not JSON") from None
        if not isinstance(body, dict) or body.get("code") != 0:
            raise RetryableError(f"API {what}: unexpected answer: {str(body)[:120]}")
        return body.get("data")

    def node_known(self) -> bool:
        """GET /keepalive: False when the bin-manager does not know this node."""
        response = self._request("GET", "/keepalive", params={"nodeName": self.node_name})
        if response.status_code == 404:
            return False
        self._data(response, "GET /keepalive")
        return True

    def register(self, node_info: dict[str, str]) -> None:
        """POST /keepalive with this node's info."""
        self._data(self._request("POST", "/keepalive", json=node_info), "POST /keepalive")

    def latest(self, bin_name: str) -> str:
        """GET /bins/{bin}: the sha256 this node should run."""
        what = f"GET /bins/{bin_name}"
        response = self._request(
            "GET", f"/bins/{bin_name}", params={"nodeName": self.node_name, "arch": self.arch}
        )
        if response.status_code == 404:
            raise UnknownBin(f"API {what}: not published: {_message(response)}")
        data = self._data(response, what)
        sha = data.get("sha256") if isinstance(data, dict) else None
        if not isinstance(sha, str) or not is_sha256(sha):
            raise RetryableError(f"API {what}: no valid sha256 in answer")
        return sha

    def report_bin(self, bin_name: str, sha: str) -> None:
        """POST /bins/{bin}: what the node now runs."""
        body = {"nodeName": self.node_name, "binName": bin_name, "sha256": sha, "version": "latest"}
        self._data(self._request("POST", f"/bins/{bin_name}", json=body), f"POST /bins/{bin_name}")

    def report_progress(self, bin_name: str, target: str, seconds: int, status: str) -> None:
        """POST /bins/{bin}/progress (in_progress, success or failed)."""
        body = {
            "nodeName": self.node_name,
            "binName": bin_name,
            "targetHash": target,
            "processingTime": seconds,
            "status": status,
        }
        path = f"/bins/{bin_name}/progress"
        self._data(self._request("POST", path, json=body), f"POST {path}")


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:80].strip() or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:200]
    return response.reason_phrase

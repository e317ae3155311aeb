"""The cluster's nginx cache, as `cluster nginx-config` renders it, in front of a real
bin-manager: protected downloads stay protected once cached; an https upstream is verified."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support.nginx import CacheNginx
from tests.support.server import BinManagerFactory

TOKEN = "Zq7-cache-test-agent-token-4Kp9xW"


@pytest.fixture
def stopped_after() -> Iterator[list[CacheNginx]]:
    started: list[CacheNginx] = []
    yield started
    for nginx in started:
        nginx.stop()


def _cache(root: Path, upstream: str, started: list[CacheNginx], *flags: str) -> CacheNginx:
    nginx = CacheNginx(root, upstream, *flags)
    started.append(nginx)
    return nginx.start()


def test_a_cached_protected_download_is_refused_to_anonymous_clients(
    bin_manager_factory: BinManagerFactory, tmp_path: Path, stopped_after: list[CacheNginx]
) -> None:
    manager = bin_manager_factory(agent_token=TOKEN)
    sha = manager.publish("app", b"protected content")
    nginx = _cache(tmp_path / "nginx", manager.url, stopped_after)
    url = f"{nginx.url}/api/v1/download/app?sha256={sha}&arch=x86_64"
    agent = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(timeout=30) as client:
        assert client.get(url).status_code == 401  # before anything is cached
        first = client.get(url, headers=agent)
        assert first.status_code == 200, nginx.errors()
        assert first.content == b"protected content"
        assert first.headers["X-Cache-Status"] == "MISS"
        again = client.get(url, headers=agent)
        assert again.headers["X-Cache-Status"] == "HIT"
        assert again.content == b"protected content"

        anonymous = client.get(url)
        assert anonymous.status_code == 401
        assert b"protected content" not in anonymous.content
        wrong = client.get(url, headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        assert b"protected content" not in wrong.content
        head = client.head(url)
        assert head.status_code == 401


def test_https_upstream_is_verified_against_the_given_ca(
    bin_manager_factory: BinManagerFactory, tmp_path: Path, stopped_after: list[CacheNginx]
) -> None:
    ca, other = trustme.CA(), trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_pem, other_pem = tmp_path / "ca.pem", tmp_path / "other.pem"
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    other.cert_pem.write_to_path(str(other_pem))
    cert.private_key_pem.write_to_path(str(key_pem))
    cert.cert_chain_pems[0].write_to_path(str(cert_pem))
    manager = bin_manager_factory(ssl_certfile=cert_pem, ssl_keyfile=key_pem, ssl_ca=ca_pem)
    sha = manager.publish("app", b"over tls")
    path = f"/api/v1/download/app?sha256={sha}"

    # nginx checks the certificate's DNS names, not its IP addresses: a name upstream
    upstream = f"https://localhost:{manager.port}"
    wrong = _cache(tmp_path / "wrong", upstream, stopped_after, "--upstream-ca", str(other_pem))
    right = _cache(tmp_path / "right", upstream, stopped_after, "--upstream-ca", str(ca_pem))
    with httpx.Client(timeout=30) as client:
        assert client.get(wrong.url + "/healthz").status_code == 502
        # the download's auth subrequest fails the same way: nginx answers 500, never the body
        refused = client.get(wrong.url + path)
        assert refused.status_code == 500
        assert b"over tls" not in refused.content
        assert "upstream SSL certificate verify error" in wrong.errors()
        served = client.get(right.url + path)
        assert served.status_code == 200, right.errors()
        assert served.content == b"over tls"

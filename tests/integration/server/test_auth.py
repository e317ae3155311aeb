"""Tokens: refusal to start with weak ones, admin and agent tokens enforced, never logged."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import trustme

from tests.integration.server.checks import envelope, node_info
from tests.support.procs import free_port
from tests.support.server import BIN_MANAGER_SCRIPT, BinManagerFactory

AGENT_TOKEN = "agent-token-0123456789abcdef"


def serve(tmp_path: Path, *flags: str, token: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIN_MANAGER_")}
    if token is not None:
        env["BIN_MANAGER_ADMIN_TOKEN"] = token
    argv = [str(BIN_MANAGER_SCRIPT), "serve", "--port", str(free_port()), *flags]
    argv += ["--data-dir", str(tmp_path / "data")]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "empty"),
        ("", "empty"),
        ("admin", "well-known"),
        ("changeme", "well-known"),
        ("123456", "well-known"),
        ("short-token", "shorter than 16"),
        ("aaaaaaaaaaaaaaaaaaaaaaa", "too guessable"),
        ("abcdabcdabcdabcd", "too guessable"),
    ],
)
def test_server_refuses_to_start_with_a_weak_admin_token(
    tmp_path: Path, token: str | None, reason: str
) -> None:
    result = serve(tmp_path, token=token)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "refusing to start" in lines[0]
    assert reason in lines[0]
    if token and len(token) > 8:  # short ones ("admin") are words of the message itself
        assert token not in result.stderr
    assert not (tmp_path / "data").exists()  # nothing touched on disk


def test_admin_token_file_is_read_and_enforced(
    tmp_path: Path, bin_manager_factory: BinManagerFactory
) -> None:
    weak = tmp_path / "weak"
    weak.write_text("password\n")
    refused = serve(tmp_path, "--admin-token-file", str(weak), token=None)
    assert refused.returncode == 2
    assert "well-known" in refused.stderr

    token_file = tmp_path / "token"
    token_file.write_text("from-a-file-0123456789abcdef\n")
    manager = bin_manager_factory(admin_token_file=token_file)
    with manager.client() as http:
        ok = http.get(
            f"{manager.api}/admin/bins",
            headers={"Authorization": "Bearer from-a-file-0123456789abcdef"},
        )
        assert envelope(ok, 200)["data"] == []
        envelope(http.get(f"{manager.api}/admin/bins"), 401)


def test_insecure_no_auth_opens_the_admin_api(bin_manager_factory: BinManagerFactory) -> None:
    manager = bin_manager_factory(insecure_no_auth=True, extra_env={"BIN_MANAGER_ADMIN_TOKEN": ""})
    with manager.client() as http:
        response = http.post(f"{manager.api}/admin/bins/demo/releases", content=b"demo")
        assert envelope(response, 200)["data"]["binName"] == "demo"
    assert "--insecure-no-auth" in manager.service.log()


@pytest.mark.parametrize(
    ("flags", "token", "says"),
    [
        ((), "a-good-admin-token-0123456789", "would ignore BIN_MANAGER_ADMIN_TOKEN"),
        (("--host", "0.0.0.0"), None, "anyone who reaches 0.0.0.0"),
    ],
)
def test_insecure_mode_is_refused_with_a_token_or_off_loopback(
    tmp_path: Path, flags: tuple[str, ...], token: str | None, says: str
) -> None:
    result = serve(tmp_path, "--insecure-no-auth", *flags, token=token)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "refusing to start: --insecure-no-auth" in lines[0]
    assert says in lines[0]
    assert not (tmp_path / "data").exists()


def test_agent_token_guards_agent_endpoints_and_no_token_is_logged(
    bin_manager_factory: BinManagerFactory,
) -> None:
    manager = bin_manager_factory(agent_token=AGENT_TOKEN)
    sha = manager.publish("guarded", b"guarded content")
    agent = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    wrong = {"Authorization": "Bearer not-the-agent-token-at-all"}
    paths = [
        "/keepalive?nodeName=n1",
        "/bins/guarded",
        "/download/guarded",
        f"/download/guarded?sha256={sha}",
        "/releases/latest/guarded/download",
        "/releases/latest/guarded/sha256",
    ]
    with manager.client(base_url=manager.api) as http:
        for path in paths:
            assert "token" in envelope(http.get(path), 401)["message"]
            envelope(http.get(path, headers=wrong), 401)
        envelope(http.post("/keepalive", json=node_info("n1")), 401)
        envelope(http.post("/keepalive", json=node_info("n1"), headers=agent), 200)
        for path in paths:
            assert http.get(path, headers=agent).status_code == 200, path
        # The admin token works on agent endpoints; the agent token never on admin ones.
        assert http.get("/bins/guarded", headers=manager.admin_headers).status_code == 200
        envelope(http.get("/admin/bins", headers=agent), 401)
        envelope(http.get(f"/admin/bins?token={manager.admin_token}"), 401)
        for open_path in ("/healthz", "/openapi.json", "/docs"):
            assert http.get(f"{manager.url}{open_path}").status_code == 200, open_path
        envelope(http.get(f"{manager.url}/metrics"), 401)
        envelope(http.get(f"{manager.url}/metrics", headers=agent), 401)
        metrics = http.get(f"{manager.url}/metrics", headers=manager.admin_headers)
        assert metrics.status_code == 200
    manager.stop()
    log = manager.service.log()
    assert '"route": "/api/v1/bins/{bin_name}"' in log  # the access log is there...
    for secret in (AGENT_TOKEN, manager.admin_token, "not-the-agent-token-at-all"):
        assert secret not in log  # ...and shows no token, header or query string


def test_https_with_a_private_ca(tmp_path: Path, bin_manager_factory: BinManagerFactory) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    manager = bin_manager_factory(ssl_certfile=certfile, ssl_keyfile=keyfile, ssl_ca=cafile)
    assert manager.url.startswith("https://127.0.0.1:")
    sha = manager.publish("tls", b"over TLS")
    with manager.client() as http:
        assert envelope(http.get(f"{manager.api}/bins/tls"), 200)["data"]["sha256"] == sha


def test_unusable_database_or_port_is_one_clear_line(tmp_path: Path) -> None:
    token = "a-good-admin-token-0123456789"
    for flags, says in (
        (("--database-url", "postgresql+psycopg://u:pw@127.0.0.1:1/x"), "cannot open the database"),
        (("--database-url", "nosuchdb://x"), "invalid database URL"),
        (("--port", "99999"), "not a TCP port"),
    ):
        result = serve(tmp_path, *flags, token=token)
        assert result.returncode == 2
        assert says in result.stderr
        assert "Traceback" not in result.stderr
        assert "pw@" not in result.stderr


def test_metrics_answer_the_metrics_token_or_the_admin_token_only(
    bin_manager_factory: BinManagerFactory,
) -> None:
    metrics_token = "metrics-Zr8-scrape-token-3xQp"
    manager = bin_manager_factory(extra_env={"BIN_MANAGER_METRICS_TOKEN": metrics_token})
    with manager.client() as http:
        url = f"{manager.url}/metrics"
        assert "bearer token" in envelope(http.get(url), 401)["message"]
        envelope(http.get(url, headers={"Authorization": "Bearer metrics-wrong-token"}), 401)
        scraped = http.get(url, headers={"Authorization": f"Bearer {metrics_token}"})
        assert scraped.status_code == 200
        assert "bin_manager_requests_total" in scraped.text
        assert http.get(url, headers=manager.admin_headers).status_code == 200

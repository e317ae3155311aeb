"""Tokens at the start: weak ones refused, a token file, --insecure-no-auth, TLS. The tokens
the routes enforce (agent, admin, metrics) and never log: tests/routes/test_auth.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import trustme

from tests.support.answers import envelope
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

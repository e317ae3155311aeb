"""Remote supervisor over HTTP(S) with credentials; the bin-manager over TLS with a test CA;
the token sent to the API's origin only."""

from __future__ import annotations

from pathlib import Path

import trustme

from tests.support.agent import Agent, program
from tests.support.loopback import Exchange, Loopback
from tests.support.nginx import TlsNginx
from tests.support.server import BinManagerFactory
from tests.support.supervisor import Supervisord


def test_remote_supervisor_over_http_with_credentials(
    bin_manager_factory: BinManagerFactory, supervisord: Supervisord, tmp_path: Path
) -> None:
    manager = bin_manager_factory(agent_token="agent-token-for-tests")
    sha = manager.publish("remote", program("1"))
    host = Agent(tmp_path / "host", manager.api, supervisord.http_url)
    host.write_manifest("remote")
    supervisord.add_program("remote", host.binary("remote"))
    creds = {
        "SUPERVISOR_USER": supervisord.user,
        "BIN_MANAGER_TOKEN": "agent-token-for-tests",
    }

    wrong = host.run(**creds, SUPERVISOR_PASSWORD="wrong")
    assert wrong.returncode == 1, host.debug(wrong)
    assert "wrong user/password" in host.log()
    assert not host.binary("remote").exists()

    result = host.run(**creds, SUPERVISOR_PASSWORD=supervisord.password)
    assert result.returncode == 0, host.debug(result)
    assert host.installed_sha("remote") == sha
    supervisord.wait_running("remote")
    assert "agent-token-for-tests" not in host.log()
    assert supervisord.password not in host.log()


def test_tls_verified_with_ca_bundle_and_refused_without(
    bin_manager_factory: BinManagerFactory, supervisord: Supervisord, tmp_path: Path
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_pem, cert_pem, key_pem = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    cert.private_key_pem.write_to_path(str(key_pem))
    cert.cert_chain_pems[0].write_to_path(str(cert_pem))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_pem), append=True)
    manager = bin_manager_factory(ssl_certfile=cert_pem, ssl_keyfile=key_pem, ssl_ca=ca_pem)
    assert manager.api.startswith("https://")
    sha = manager.publish("secure", program("1"))
    host = Agent(tmp_path / "host", manager.api, supervisord.socket_url)
    host.write_manifest("secure")
    supervisord.add_program("secure", host.binary("secure"))

    refused = host.run()
    assert refused.returncode == 75, host.debug(refused)
    assert "CERTIFICATE_VERIFY_FAILED" in host.log()
    assert not host.binary("secure").exists()

    result = host.run(CA_BUNDLE=str(ca_pem))
    assert result.returncode == 0, host.debug(result)
    assert host.installed_sha("secure") == sha


def test_the_token_goes_to_the_api_origin_only_not_to_another_download_origin(
    bin_manager_factory: BinManagerFactory, supervisord: Supervisord, tmp_path: Path
) -> None:
    token = "agent-token-for-tests"
    manager = bin_manager_factory(agent_token=token)
    released = program("1")
    sha = manager.publish("app", released)

    def serve(req: Exchange) -> None:  # a cluster cache on another port
        req.send_response(200)
        req.send_header("Content-Length", str(len(released)))
        req.end_headers()
        req.wfile.write(released)

    with Loopback(serve, keep_alive=False) as cache:
        host = Agent(tmp_path / "host", manager.api, supervisord.socket_url)
        host.write_manifest("app")
        supervisord.add_program("app", host.binary("app"))
        result = host.run(BIN_MANAGER_TOKEN=token, DOWNLOAD_BASE_URL=f"{cache.url}/api/v1/download")
    assert result.returncode == 0, host.debug(result)  # the API took the token
    assert host.installed_sha("app") == sha
    assert [r.path.split("?")[0] for r in cache.seen] == ["/api/v1/download/app"]
    assert not any("Authorization" in r.headers for r in cache.seen), cache.seen


def test_remote_supervisor_over_https_is_verified_with_ca_bundle(
    bin_manager_factory: BinManagerFactory, supervisord: Supervisord, tmp_path: Path
) -> None:
    ca, other = trustme.CA(), trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_pem, other_pem = tmp_path / "ca.pem", tmp_path / "other.pem"
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    other.cert_pem.write_to_path(str(other_pem))
    cert.private_key_pem.write_to_path(str(key_pem))
    cert.cert_chain_pems[0].write_to_path(str(cert_pem))
    proxy = TlsNginx(tmp_path / "nginx", supervisord.http_url, cert_pem, key_pem).start()
    try:
        manager = bin_manager_factory()
        sha = manager.publish("remote", program("1"))
        host = Agent(tmp_path / "host", manager.api, proxy.url)
        host.write_manifest("remote")
        supervisord.add_program("remote", host.binary("remote"))
        creds = {"SUPERVISOR_USER": supervisord.user, "SUPERVISOR_PASSWORD": supervisord.password}

        wrong = host.run(**creds, CA_BUNDLE=str(other_pem))
        assert wrong.returncode == 2, host.debug(wrong)
        said = [line for line in wrong.stderr.splitlines() if "SUPERVISOR_URL" in line]
        assert len(said) == 1, wrong.stderr
        assert "certificate not trusted" in said[0]
        assert "set CA_BUNDLE" in said[0]
        assert not host.binary("remote").exists()

        result = host.run(**creds, CA_BUNDLE=str(ca_pem))
        assert result.returncode == 0, host.debug(result)
        assert host.installed_sha("remote") == sha
        supervisord.wait_running("remote")
        assert supervisord.password not in host.log()
        assert "POST /RPC2" in proxy.access_log()  # through the TLS proxy, not around it
    finally:
        proxy.stop()

"""client/transport.py and http_pool.py against real loopback HTTP(S) servers: keep-alive,
the token's origin, redirects, cut and slow answers, TLS verification; and the transport
seam: a Client given another transport sends every request through it."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest
import trustme

from ansible_proxy.client import http_pool
from ansible_proxy.client.api import make_client
from ansible_proxy.client.http_pool import HttpPool
from ansible_proxy.client.transport import Client, HttpError, HttpTimeout, OriginBearer, Request
from ansible_proxy.errors import ConfigError, RetryableError
from tests.support.handler_transport import HandlerTransport, Reply
from tests.support.loopback import Exchange, Loopback, answer, chunked, cut, late
from tests.support.procs import LOOPBACK, free_port

CODE_0 = b'{"code": 0}'


def test_one_connection_per_origin_is_reused_until_closed() -> None:
    with Loopback(answer(200, CODE_0)) as server:
        with Client([server.url]) as client:
            for _ in range(3):
                got = client.request("GET", f"{server.url}/bins", params={"arch": "x86_64"})
                assert (got.status, got.json()) == (200, {"code": 0})
            with client.stream("GET", f"{server.url}/download") as streamed:
                assert b"".join(streamed.iter_bytes()) == CODE_0
            client.request("POST", f"{server.url}/bins/app", json={"a": 1})
        assert server.connections == 1
        assert [(seen.method, seen.path) for seen in server.seen][:1] == [
            ("GET", "/bins?arch=x86_64")
        ]
        with Client([server.url]) as client:
            client.request("GET", f"{server.url}/bins?nodeName=n", params={"arch": "a b"})
        assert server.connections == 2
        assert server.seen[-1].path == "/bins?nodeName=n&arch=a+b"


def test_a_request_made_while_a_download_streams_goes_beside_it() -> None:
    """A progress report during a download: its own connection, the download unharmed
    (on one shared connection http.client refused the report and the download died)."""
    body = bytes(range(256)) * 4096  # 1 MiB: far more than one read
    routes = {"/download": answer(200, body), "/progress": answer(200, CODE_0)}
    with (
        Loopback({**routes, "/bins": answer(200, CODE_0)}) as server,
        Client([server.url]) as client,
    ):
        got = bytearray()
        with client.stream("GET", f"{server.url}/download") as streamed:
            for number, chunk in enumerate(streamed.iter_bytes()):
                got += chunk
                if number in (0, 1):
                    report = client.request("POST", f"{server.url}/progress", json={})
                    assert (report.status, report.json()) == (200, {"code": 0})
        assert bytes(got) == body
        assert server.connections == 2
        client.request("GET", f"{server.url}/bins")  # both kept: the next one reuses one
        client.request("GET", f"{server.url}/bins")
        assert server.connections == 2
    paths = [(seen.port, seen.path) for seen in server.seen]
    download_port = paths[0][0]
    assert [path for port, path in paths if port != download_port][:2] == ["/progress"] * 2


def test_the_token_goes_to_the_api_origin_only() -> None:
    with Loopback(answer(200, b"ok")) as api, Loopback(answer(200, b"ok")) as cache:
        with Client([api.url, cache.url], OriginBearer("node-token", api.url)) as client:
            client.request("GET", f"{api.url}/keepalive")
            client.request("GET", f"{cache.url}/download/app")
            client.request("POST", f"{api.url}/enrol", auth=OriginBearer("", api.url))
            client.bearer = OriginBearer("new-token", api.url)
            client.request("GET", f"{api.url}/keepalive")
        said = [seen.headers.get("Authorization") for seen in api.seen]
        assert said == ["Bearer node-token", None, "Bearer new-token"]
        assert "Authorization" not in cache.seen[0].headers
        assert "node-token" not in repr(OriginBearer("node-token", api.url))


def test_same_origin_redirects_are_followed_and_others_refused() -> None:
    elsewhere = f"http://{LOOPBACK}:{free_port()}/steal"
    routes = {
        "/moved": answer(302, Location="/final"),
        "/posted": answer(303, Location="/final"),
        "/away": answer(302, Location=f"{elsewhere}?token=x"),
        "/final": answer(200, b"final"),
    }
    with Loopback(routes) as server, Client([server.url]) as client:
        assert client.request("GET", f"{server.url}/moved").content == b"final"
        assert client.request("POST", f"{server.url}/posted", json={}).content == b"final"
        methods = [(seen.method, seen.path) for seen in server.seen]
        assert methods[-2:] == [("POST", "/posted"), ("GET", "/final")]
        with pytest.raises(RetryableError) as refused:
            client.request("GET", f"{server.url}/away")
        assert str(refused.value) == (
            f"refused a redirect to {elsewhere}: not the scheme, host and port of "
            "BIN_MANAGER_API or DOWNLOAD_BASE_URL"
        )
        assert server.connections == 1
    with (
        Loopback(answer(302, Location="/")) as server,
        Client([server.url]) as client,
        pytest.raises(HttpError, match="more than 5 redirects"),
    ):
        client.request("GET", server.url)
    with Loopback(answer(302, Location="/")) as server, Client(max_redirects=0) as client:
        assert client.request("GET", server.url).status == 302


@pytest.mark.parametrize("noticed", [True, False])
def test_a_connection_the_server_closed_while_idle_is_replaced(
    noticed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def handle(req: Exchange) -> None:
        req.reply(200, b"ok")
        req.close_connection = True  # without saying so: an idle keep-alive timeout

    if not noticed:  # closed between the check and the send: the send is retried once
        monkeypatch.setattr(http_pool, "_dropped", lambda sock: False)
    with Loopback(handle) as server, Client([server.url]) as client:
        assert client.request("GET", server.url).content == b"ok"
        time.sleep(0.2)
        assert client.request("POST", server.url, json={}).content == b"ok"
    assert [seen.method for seen in server.seen] == ["GET", "POST"]
    assert server.connections == 2


def test_a_body_cut_short_is_an_error_not_an_end() -> None:
    with Loopback(cut(b"x" * 100, 10)) as server, Client([server.url]) as client:
        with client.stream("GET", server.url) as streamed, pytest.raises(HttpError) as short:
            for _ in streamed.iter_bytes():
                pass
        assert "without sending complete message body (90 bytes missing)" in str(short.value)
        with pytest.raises(HttpError):
            client.request("GET", server.url)


def test_a_chunked_body_is_read_whole_and_the_connection_kept() -> None:
    with (
        Loopback(chunked((b"hello ", b"world"), ETag='"e1"')) as server,
        Client([server.url]) as client,
    ):
        with client.stream("GET", server.url) as streamed:
            assert streamed.headers["etag"] == '"e1"'
            assert b"".join(streamed.iter_bytes()) == b"hello world"
        assert client.request("GET", server.url).text == "hello world"
    assert server.connections == 1


def test_an_unread_answer_does_not_spoil_the_next_request() -> None:
    routes = {"/big": answer(200, b"b" * 300_000), "/small": answer(200, b"small")}
    with Loopback(routes) as server, Client([server.url]) as client:
        with client.stream("GET", f"{server.url}/small"):
            pass  # drained: the connection stays
        with client.stream("GET", f"{server.url}/big"):
            pass  # too big to drain: closed
        assert client.request("GET", f"{server.url}/small").content == b"small"
    assert server.connections == 2


def test_timeouts_and_refusals_are_ours() -> None:
    with (
        Loopback(late(1, answer(200, b"ok"))) as server,
        Client([server.url], timeout=0.2) as client,
        pytest.raises(HttpTimeout),
    ):
        client.request("GET", server.url)
    with Client() as client, pytest.raises(HttpError, match="Connection refused"):
        client.request("GET", f"http://{LOOPBACK}:{free_port()}/")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """(a server context for 127.0.0.1, the PEM of the CA that signed it)."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(LOOPBACK).configure_cert(server)
    pem = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return server, pem


def test_tls_is_verified_against_ca_bundle(tls: tuple[ssl.SSLContext, Path]) -> None:
    context, ca_pem = tls
    with Loopback(answer(200, b"secret"), tls=context) as server:
        with Client([server.url], ca_bundle=ca_pem) as client:
            assert client.request("GET", server.url).content == b"secret"
            assert client.request("GET", server.url).content == b"secret"
        assert server.connections == 1
        with Client([server.url]) as client, pytest.raises(HttpError) as refused:
            client.request("GET", server.url)
        assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
        with Client([server.url], insecure=True) as client:
            assert client.request("GET", server.url).content == b"secret"


def test_make_client_reads_ca_bundle_for_https_only(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(ConfigError) as bad:
        make_client(["https://example.invalid/api/v1"], "", missing, False, 5.0)
    assert str(bad.value).startswith(f"CA_BUNDLE {missing}: ")
    assert "\n" not in str(bad.value)
    with make_client(["http://example.invalid/api/v1"], "", missing, False, 5.0) as client:
        assert isinstance(client.transport, HttpPool)
        assert client.transport._tls is None  # no TLS context for a plain-HTTP API


def test_a_client_given_a_transport_sends_every_request_through_it() -> None:
    """The seam: redirects, the token's origin, JSON bodies and queries are the client's,
    whatever answers; each answer is closed (its connection given back) once read."""
    api, cache = "http://bin-manager.test", "http://cache.test:8080"

    def handle(request: Request) -> Reply:
        if request.url.startswith(f"{api}/old"):
            return Reply(307, headers={"Location": "/api/v1/bins?arch=x86_64"})
        if request.url.startswith(cache):
            return Reply(302, headers={"Location": "http://thief.test/steal"})
        return Reply(200, (piece for piece in (b'{"code"', b": 0}")))

    transport = HandlerTransport(handle)
    with Client([api, cache], OriginBearer("t", api), transport=transport, timeout=3) as client:
        got = client.request("POST", f"{api}/old", params={"n": "a b"}, json={"x": 1})
        assert (got.status, got.json()) == (200, {"code": 0})
        with pytest.raises(
            RetryableError, match=r"^refused a redirect to http://thief\.test/steal:"
        ):
            client.request("GET", f"{cache}/download/app")
        assert transport.open == 0
    assert [(r.method, r.url) for r in transport.requests] == [
        ("POST", f"{api}/old?n=a+b"),
        ("POST", f"{api}/api/v1/bins?arch=x86_64"),  # a 307 keeps the method and body
        ("GET", f"{cache}/download/app"),
    ]
    first, again, download = transport.requests
    assert first.body == again.body == b'{"x": 1}'
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["Authorization"] == again.headers["Authorization"] == "Bearer t"
    assert "Authorization" not in download.headers
    assert {r.timeout for r in transport.requests} == {3}
    assert transport.closed

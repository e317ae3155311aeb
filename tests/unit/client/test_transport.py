"""client/transport.py against real loopback HTTP(S) servers: keep-alive, the token's
origin, redirects, cut and slow answers, TLS verification."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from ansible_proxy.client import transport
from ansible_proxy.client.api import make_client
from ansible_proxy.client.transport import Client, HttpError, HttpTimeout, OriginBearer
from ansible_proxy.errors import ConfigError, RetryableError
from tests.support.procs import LOOPBACK, free_port

Handle = Callable[[BaseHTTPRequestHandler], None]


class Server:
    """HTTP/1.1 with keep-alive; records (client port, method, path, headers) per request."""

    def __init__(self, handle: Handle, context: ssl.SSLContext | None = None) -> None:
        self.seen: list[tuple[int, str, str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.command == "POST":
                    self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.seen.append(
                    (self.client_address[1], self.command, self.path, dict(self.headers.items()))
                )
                handle(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://{LOOPBACK}:{self.httpd.server_address[1]}"

    @property
    def connections(self) -> int:
        return len({port for port, *_ in self.seen})


@contextmanager
def serving(handle: Handle, context: ssl.SSLContext | None = None) -> Iterator[Server]:
    server = Server(handle, context)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(5)


def reply(body: bytes = b"ok", status: int = 200, **headers: str) -> Handle:
    def handle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(status)
        for name, value in headers.items():
            req.send_header(name.replace("_", "-"), value)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    return handle


def test_one_connection_per_origin_is_reused_until_closed() -> None:
    with serving(reply(b'{"code": 0}')) as server:
        with Client([server.url]) as client:
            for _ in range(3):
                answer = client.request("GET", f"{server.url}/bins", params={"arch": "x86_64"})
                assert (answer.status, answer.json()) == (200, {"code": 0})
            with client.stream("GET", f"{server.url}/download") as streamed:
                assert b"".join(streamed.iter_bytes()) == b'{"code": 0}'
            client.request("POST", f"{server.url}/bins/app", json={"a": 1})
        assert server.connections == 1
        assert [(method, path) for _, method, path, _ in server.seen][:1] == [
            ("GET", "/bins?arch=x86_64")
        ]
        with Client([server.url]) as client:
            client.request("GET", f"{server.url}/bins?nodeName=n", params={"arch": "a b"})
        assert server.connections == 2
        assert server.seen[-1][2] == "/bins?nodeName=n&arch=a+b"


def test_a_request_made_while_a_download_streams_goes_beside_it() -> None:
    """A progress report during a download: its own connection, the download unharmed
    (on one shared connection http.client refused the report and the download died)."""
    body = bytes(range(256)) * 4096  # 1 MiB: far more than one read

    def handle(req: BaseHTTPRequestHandler) -> None:
        reply(body if req.path == "/download" else b'{"code": 0}')(req)

    with serving(handle) as server, Client([server.url]) as client:
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
    paths = [(port, path) for port, _, path, _ in server.seen]
    download_port = paths[0][0]
    assert [path for port, path in paths if port != download_port][:2] == ["/progress"] * 2


def test_the_token_goes_to_the_api_origin_only() -> None:
    with serving(reply()) as api, serving(reply()) as cache:
        with Client([api.url, cache.url], OriginBearer("node-token", api.url)) as client:
            client.request("GET", f"{api.url}/keepalive")
            client.request("GET", f"{cache.url}/download/app")
            client.request("POST", f"{api.url}/enrol", auth=OriginBearer("", api.url))
            client.bearer = OriginBearer("new-token", api.url)
            client.request("GET", f"{api.url}/keepalive")
        said = [headers.get("Authorization") for _, _, _, headers in api.seen]
        assert said == ["Bearer node-token", None, "Bearer new-token"]
        assert "Authorization" not in cache.seen[0][3]
        assert "node-token" not in repr(OriginBearer("node-token", api.url))


def test_same_origin_redirects_are_followed_and_others_refused() -> None:
    elsewhere = f"http://{LOOPBACK}:{free_port()}/steal"

    def handle(req: BaseHTTPRequestHandler) -> None:
        if req.path == "/moved":
            reply(b"", 302, Location="/final")(req)
        elif req.path == "/posted":
            reply(b"", 303, Location="/final")(req)
        elif req.path == "/away":
            reply(b"", 302, Location=f"{elsewhere}?token=x")(req)
        else:
            reply(b"final")(req)

    with serving(handle) as server, Client([server.url]) as client:
        assert client.request("GET", f"{server.url}/moved").content == b"final"
        assert client.request("POST", f"{server.url}/posted", json={}).content == b"final"
        methods = [(method, path) for _, method, path, _ in server.seen]
        assert methods[-2:] == [("POST", "/posted"), ("GET", "/final")]
        with pytest.raises(RetryableError) as refused:
            client.request("GET", f"{server.url}/away")
        assert str(refused.value) == (
            f"refused a redirect to {elsewhere}: not the scheme, host and port of "
            "BIN_MANAGER_API or DOWNLOAD_BASE_URL"
        )
        assert server.connections == 1
    with (
        serving(reply(b"", 302, Location="/")) as server,
        Client([server.url]) as client,
        pytest.raises(HttpError, match="more than 5 redirects"),
    ):
        client.request("GET", server.url)
    with serving(reply(b"", 302, Location="/")) as server, Client(max_redirects=0) as client:
        assert client.request("GET", server.url).status == 302


@pytest.mark.parametrize("noticed", [True, False])
def test_a_connection_the_server_closed_while_idle_is_replaced(
    noticed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def handle(req: BaseHTTPRequestHandler) -> None:
        reply()(req)
        req.close_connection = True  # without saying so: an idle keep-alive timeout

    if not noticed:  # closed between the check and the send: the send is retried once
        monkeypatch.setattr(transport, "_dropped", lambda sock: False)
    with serving(handle) as server, Client([server.url]) as client:
        assert client.request("GET", server.url).content == b"ok"
        time.sleep(0.2)
        assert client.request("POST", server.url, json={}).content == b"ok"
    assert [m for _, m, _, _ in server.seen] == ["GET", "POST"]
    assert server.connections == 2


def test_a_body_cut_short_is_an_error_not_an_end() -> None:
    def handle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Length", "100")
        req.end_headers()
        req.wfile.write(b"x" * 10)
        req.close_connection = True

    with serving(handle) as server, Client([server.url]) as client:
        with client.stream("GET", server.url) as answer, pytest.raises(HttpError) as cut:
            for _ in answer.iter_bytes():
                pass
        assert "without sending complete message body (90 bytes missing)" in str(cut.value)
        with pytest.raises(HttpError):
            client.request("GET", server.url)


def test_a_chunked_body_is_read_whole_and_the_connection_kept() -> None:
    def handle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Transfer-Encoding", "chunked")
        req.send_header("ETag", '"e1"')
        req.end_headers()
        for piece in (b"hello ", b"world"):
            req.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        req.wfile.write(b"0\r\n\r\n")

    with serving(handle) as server, Client([server.url]) as client:
        with client.stream("GET", server.url) as answer:
            assert answer.headers["etag"] == '"e1"'
            assert b"".join(answer.iter_bytes()) == b"hello world"
        assert client.request("GET", server.url).text == "hello world"
    assert server.connections == 1


def test_an_unread_answer_does_not_spoil_the_next_request() -> None:
    big = b"b" * 300_000

    def handle(req: BaseHTTPRequestHandler) -> None:
        reply(big if req.path == "/big" else b"small")(req)

    with serving(handle) as server, Client([server.url]) as client:
        with client.stream("GET", f"{server.url}/small"):
            pass  # drained: the connection stays
        with client.stream("GET", f"{server.url}/big"):
            pass  # too big to drain: closed
        assert client.request("GET", f"{server.url}/small").content == b"small"
    assert server.connections == 2


def test_timeouts_and_refusals_are_ours() -> None:
    def late(req: BaseHTTPRequestHandler) -> None:
        time.sleep(1)
        reply()(req)

    with (
        serving(late) as server,
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
    with serving(reply(b"secret"), context) as server:
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
        assert client._tls is None  # no TLS context for a plain-HTTP API

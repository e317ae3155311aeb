"""HTTP/1.1 for the host side (agent, inspector, cluster proxy), over `http.client`.

Owns every HTTP connection these open: keep-alive connections per origin, reused for the
whole tick and closed with the client. A connection carries one request at a time: while
an answer is still being read (a download streaming), another request to that origin
(a progress report) gets a connection of its own, never the busy one. TLS verified
against CA_BUNDLE or the system store, the context built only for an https:// URL; the
bearer token sent to the API's origin only; redirects followed within the client's
origins, any other refused. Socket and protocol failures become `HttpError`, a timed-out
socket `HttpTimeout`.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import select
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from ansible_proxy.errors import ConfigError, RetryableError

if TYPE_CHECKING:
    import ssl

# (scheme, host, port): what a token and a redirect are checked against
Origin = tuple[str, str, int]
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
READ_SIZE = 256 * 1024  # at most one socket read per chunk: whatever arrived, up to this
_DRAIN_LIMIT = 64 * 1024  # an unread answer this small is read to keep its connection
IDLE_PER_ORIGIN = 2  # kept-alive connections kept per origin (a download and the API beside it)


class HttpError(Exception):
    """No complete answer: refused, reset, TLS refused, a malformed or cut answer."""


class HttpTimeout(HttpError):
    """A connect, send or read outlasted the client's (or the call's) timeout."""


def origin(url: str) -> Origin:
    """The scheme, host and port of `url` (the port a scheme implies when none is given)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise HttpError(f"invalid port in {url}") from None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme, 0)


@dataclass(frozen=True)
class OriginBearer:
    """`Authorization: Bearer <token>` on requests to the origin of `api` only; none with
    an empty token."""

    token: str = field(repr=False)
    api: str

    def header(self, to: Origin) -> str | None:
        return f"Bearer {self.token}" if self.token and to == origin(self.api) else None


@dataclass(frozen=True)
class Response:
    """A whole answer. Header names are lower case."""

    status: int
    reason: str
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return jsonlib.loads(self.content)


class StreamResponse:
    """An answer whose body is read as it arrives (`iter_bytes`). Header names are lower case."""

    def __init__(self, answer: http.client.HTTPResponse) -> None:
        self._answer = answer
        self.status = answer.status
        self.reason = answer.reason
        self.headers = _headers(answer.getheaders())

    def read(self) -> bytes:
        """The whole (rest of the) body; HttpError when it ends short."""
        with _translated():
            return self._answer.read()

    def iter_bytes(self) -> Iterator[bytes]:
        """The body in the pieces the socket gives; HttpError when it ends short."""
        answer = self._answer
        while True:
            with _translated():
                chunk = answer.read1(READ_SIZE)
                if not chunk:
                    if answer.length:  # read1 takes an early close for the end
                        raise HttpError(
                            "peer closed connection without sending complete message body "
                            f"({answer.length} bytes missing)"
                        )
                    answer.read()  # marks the answer done, so its connection can be reused
                    return
            yield chunk


class Client:
    """Keep-alive connections by origin, for one tick; close it (or use `with`) after.

    A connection is lent to one request until its answer is read (or dropped), then kept
    for the next request to its origin: a request made while another answer streams (a
    progress report during a download) opens a second connection beside it.

    `origins`: the URLs whose origins redirects may lead to (BIN_MANAGER_API and
    DOWNLOAD_BASE_URL); `timeout` (HTTP_TIMEOUT) bounds each connect, send and read.
    """

    def __init__(
        self,
        origins: Iterable[str] = (),
        bearer: OriginBearer | None = None,
        ca_bundle: Path | None = None,
        insecure: bool = False,
        timeout: float = 10.0,
        max_redirects: int = MAX_REDIRECTS,
    ) -> None:
        self.allowed = {origin(url) for url in origins}
        self.bearer = bearer
        self.ca_bundle = ca_bundle
        self.insecure = insecure
        self.timeout = timeout
        self.max_redirects = max_redirects
        self._tls: ssl.SSLContext | None = None
        self._idle: dict[Origin, list[http.client.HTTPConnection]] = {}
        self._busy: set[http.client.HTTPConnection] = set()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        for connection in self._busy:
            connection.close()
        self._busy.clear()

    def tls_context(self) -> ssl.SSLContext:
        """The context for https:// (built once); ConfigError when CA_BUNDLE is unusable."""
        if self._tls is None:
            import ssl  # here: an http://-only agent never loads OpenSSL's context

            try:
                context = ssl.create_default_context(
                    cafile=str(self.ca_bundle) if self.ca_bundle and not self.insecure else None
                )
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"CA_BUNDLE {self.ca_bundle}: {exc}") from None
            if self.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls = context
        return self._tls

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        json: object = None,
        auth: OriginBearer | None = None,
        timeout: float | None = None,
    ) -> Response:
        """One whole answer (redirects followed). `auth` replaces the client's bearer."""
        with self.stream(
            method, url, params=params, headers=headers, json=json, auth=auth, timeout=timeout
        ) as answer:
            return Response(answer.status, answer.reason, answer.headers, answer.read())

    @contextmanager
    def stream(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        json: object = None,
        auth: OriginBearer | None = None,
        timeout: float | None = None,
    ) -> Iterator[StreamResponse]:
        """The answer with its body still to read; its connection is kept only when read."""
        sent = {"User-Agent": "ansible-proxy", **(headers or {})}
        body = None
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent["Content-Type"] = "application/json"
        if params:
            url += ("&" if urlsplit(url).query else "?") + urlencode(params)
        seconds = self.timeout if timeout is None else timeout
        for _ in range(self.max_redirects + 1):
            where = origin(url)
            bearer = auth or self.bearer
            token = bearer.header(where) if bearer else None
            connection, answer = self._send(
                where, method, _target(url), {**sent, **_auth(token)}, body, seconds
            )
            location = answer.getheader("location")
            if answer.status not in REDIRECTS or not location or not self.max_redirects:
                try:
                    yield StreamResponse(answer)
                finally:
                    self._give_back(where, connection, answer)
                return
            self._give_back(where, connection, answer)
            url = self._redirected(url, location)
            if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                sent.pop("Content-Type", None)
        raise HttpError(f"more than {self.max_redirects} redirects")

    def _redirected(self, url: str, location: str) -> str:
        target = urljoin(url, location)
        if origin(target) not in self.allowed:
            parts = urlsplit(target)
            where = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
            raise RetryableError(
                f"refused a redirect to {where}: not the scheme, host and port of "
                "BIN_MANAGER_API or DOWNLOAD_BASE_URL"
            )
        return target

    def _send(
        self,
        where: Origin,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: float,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        for attempt in (1, 2):
            connection, reused = self._connection(where, timeout, fresh=attempt == 2)
            self._busy.add(connection)
            try:
                connection.request(method, target, body=body, headers=headers)
                return connection, connection.getresponse()
            except (ConnectionResetError, BrokenPipeError) as exc:
                self._drop(connection)
                # The server closed an idle kept-alive connection as we sent: nothing was
                # answered, so the request is sent once more on a new connection.
                if not (reused and attempt == 1):
                    raise HttpError(_reason(exc)) from None
            except socket.timeout as exc:
                self._drop(connection)
                raise HttpTimeout(_reason(exc)) from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop(connection)
                raise HttpError(_reason(exc)) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(
        self, where: Origin, timeout: float, fresh: bool = False
    ) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection to `where` (or a new one, always with `fresh`) and whether
        it is open already (a reuse). Never one that is still reading an answer."""
        idle = self._idle.get(where, [])
        while idle and not fresh:
            connection = idle.pop()
            if connection.sock is None or _dropped(connection.sock):
                connection.close()  # the server closed it while idle: a new one, not a failure
                continue
            connection.timeout = timeout
            connection.sock.settimeout(timeout)
            return connection, True
        scheme, host, port = where
        if scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self.tls_context()
            ), False
        if scheme == "http":
            return http.client.HTTPConnection(host, port, timeout=timeout), False
        raise HttpError(f"unsupported URL scheme {scheme!r}")

    def _give_back(
        self,
        where: Origin,
        connection: http.client.HTTPConnection,
        answer: http.client.HTTPResponse,
    ) -> None:
        """The answer is done with: keep its connection for the next request, or close it."""
        try:
            _finish(connection, answer)
        finally:
            self._busy.discard(connection)
            idle = self._idle.setdefault(where, [])
            # sock None: closed, by the server's `Connection: close` or an unread answer
            if connection.sock is not None and len(idle) < IDLE_PER_ORIGIN:
                idle.append(connection)
            else:
                connection.close()

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._busy.discard(connection)


@contextmanager
def _translated() -> Iterator[None]:
    """Socket and http.client failures while reading an answer, as ours."""
    try:
        yield
    except socket.timeout as exc:
        raise HttpTimeout(_reason(exc)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise HttpError(_reason(exc)) from None


def _finish(connection: http.client.HTTPConnection, answer: http.client.HTTPResponse) -> None:
    """Leave `connection` ready for the next request, or closed."""
    if answer.isclosed():
        return
    if answer.length is not None and answer.length <= _DRAIN_LIMIT:
        try:
            answer.read()
            return
        except socket.timeout:
            connection.close()
            raise
        except (OSError, http.client.HTTPException):
            pass
    connection.close()


def _dropped(sock: socket.socket) -> bool:
    """An idle kept-alive socket with something to read has been closed by the server."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _target(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("", "", parts.path or "/", parts.query, ""))


def _auth(bearer: str | None) -> dict[str, str]:
    return {"Authorization": bearer} if bearer else {}


def _headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        found[key] = f"{found[key]}, {value}" if key in found else value
    return found


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__

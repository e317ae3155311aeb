"""HTTP/1.1 over `http.client`: the transport the host side's `Client` uses in production,
and the one place that opens connections.

Keep-alive connections per origin, reused for the whole tick and closed with the client.
A connection carries one request at a time: while an answer is still being read (a
download streaming), another request to that origin (a progress report) gets a
connection of its own, never the busy one. TLS verified against CA_BUNDLE or the system
store, the context built only for an https:// URL. Socket and protocol failures become
`HttpError`, a timed-out socket `HttpTimeout`.
"""

from __future__ import annotations

import http.client
import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from ansible_proxy.client.wire import (
    HttpError,
    HttpTimeout,
    Origin,
    Request,
    StreamResponse,
    origin,
)
from ansible_proxy.errors import ConfigError

if TYPE_CHECKING:
    import ssl

READ_SIZE = 256 * 1024  # at most one socket read per chunk: whatever arrived, up to this
_DRAIN_LIMIT = 64 * 1024  # an unread answer this small is read to keep its connection
IDLE_PER_ORIGIN = 2  # kept-alive connections kept per origin (a download and the API beside it)


class HttpPool:
    """Keep-alive connections by origin. A connection is lent to one request until its
    answer is read (or dropped), then kept for the next request to its origin."""

    def __init__(self, ca_bundle: Path | None = None, insecure: bool = False) -> None:
        self.ca_bundle = ca_bundle
        self.insecure = insecure
        self._tls: ssl.SSLContext | None = None
        self._idle: dict[Origin, list[http.client.HTTPConnection]] = {}
        self._busy: set[http.client.HTTPConnection] = set()
        # Each busy connection's socket, kept here: an answer with `Connection: close` takes
        # the socket from its connection (connection.sock is None while the body is read).
        self._sockets: dict[http.client.HTTPConnection, socket.socket] = {}

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        for connection in self._busy:
            connection.close()
        self._busy.clear()
        self._sockets.clear()

    def abort(self) -> None:
        """From another thread: shut down the connections still in use, so a read blocked
        on one returns at once and its request fails."""
        sockets = self._sockets.copy()  # one C call each: safe beside the request's thread
        for connection in self._busy.copy():
            sock = connection.sock or sockets.get(connection)
            if sock is not None:
                with suppress(OSError):  # closed meanwhile: nothing left to stop
                    sock.shutdown(socket.SHUT_RDWR)

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

    def send(self, request: Request) -> PooledResponse:
        """Send `request` on a connection of its own (a kept one when there is one idle)."""
        where = origin(request.url)
        parts = urlsplit(request.url)
        target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        for attempt in (1, 2):
            connection, reused = self._connection(where, request.timeout, fresh=attempt == 2)
            self._busy.add(connection)
            try:
                connection.request(
                    request.method, target, body=request.body, headers=request.headers
                )
                if connection.sock is not None:  # connected now; abort() may need it later
                    self._sockets[connection] = connection.sock
                return PooledResponse(self, where, connection, connection.getresponse())
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

    def give_back(
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
            self._sockets.pop(connection, None)
            idle = self._idle.setdefault(where, [])
            # sock None: closed, by the server's `Connection: close` or an unread answer
            if connection.sock is not None and len(idle) < IDLE_PER_ORIGIN:
                idle.append(connection)
            else:
                connection.close()

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._busy.discard(connection)
        self._sockets.pop(connection, None)


class PooledResponse(StreamResponse):
    """An answer on a connection lent by an `HttpPool`; `close()` gives the connection back."""

    def __init__(
        self,
        pool: HttpPool,
        where: Origin,
        connection: http.client.HTTPConnection,
        answer: http.client.HTTPResponse,
    ) -> None:
        super().__init__(answer.status, answer.reason, _headers(answer.getheaders()))
        self._pool = pool
        self._where = where
        self._connection = connection
        self._answer = answer

    def read(self) -> bytes:
        with _translated():
            return self._answer.read()

    def iter_bytes(self) -> Iterator[bytes]:
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

    def close(self) -> None:
        self._pool.give_back(self._where, self._connection, self._answer)


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


def _headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        found[key] = f"{found[key]}, {value}" if key in found else value
    return found


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__

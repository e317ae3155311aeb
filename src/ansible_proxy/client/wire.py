"""What the host side's HTTP client and its transports exchange: a `Request` goes to a
`Transport`, which answers a `StreamResponse` (read as it arrives, then closed).

`transport.Client` adds what every request shares (the token's origin, redirects, JSON
bodies, query strings) on top of one transport: `http_pool.HttpPool` in production (the
one thing that opens connections), or a test's own, which answers in process
(tests/support/handler_transport.py), as httpx's MockTransport does. Failures of the
connection, whatever the transport, are `HttpError`; a timed-out one `HttpTimeout`.
"""

from __future__ import annotations

import json as jsonlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

# (scheme, host, port): what a token and a redirect are checked against
Origin = tuple[str, str, int]


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
class Request:
    """One request as sent: the whole URL (query included), every header, the body, and
    the timeout for each connect, send and read."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    timeout: float


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


class StreamResponse(ABC):
    """An answer whose body is read as it arrives (`iter_bytes`), then closed, read or
    not: its transport may then lend its connection to the next request. Header names are
    lower case."""

    def __init__(self, status: int, reason: str, headers: dict[str, str]) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers

    @abstractmethod
    def read(self) -> bytes:
        """The whole (rest of the) body; HttpError when it ends short."""

    @abstractmethod
    def iter_bytes(self) -> Iterator[bytes]:
        """The body in the pieces the connection gives; HttpError when it ends short."""

    @abstractmethod
    def close(self) -> None:
        """Done with this answer: its connection is kept for another request, or closed."""


class Transport(Protocol):
    """Sends one request and answers it, redirects and all left to the caller (`Client`)."""

    def send(self, request: Request) -> StreamResponse:
        """The answer, its body still to read; HttpError (HttpTimeout) when there is none."""
        ...

    def close(self) -> None:
        """Close every connection this transport holds."""
        ...

    def abort(self) -> None:
        """From another thread: make the requests in flight fail at once."""
        ...

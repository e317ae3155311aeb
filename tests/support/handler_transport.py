"""A transport (client/wire.py) that answers in process: a function of the test's takes
each `Request` and returns a `Reply`, as httpx's MockTransport does. No socket, no
thread: code that takes a `transport.Client` (the API, downloads, the signature check)
runs against it in milliseconds.

A `Reply`'s body is bytes, or pieces (any iterable of bytes) given one at a time as
`iter_bytes()` reads them: a generator may sleep between pieces (a slow link) or raise
`HttpError` / `HttpTimeout` part-way (a cut or stalled answer), as a connection would. A
handler that raises either gives no answer at all (refused, timed out).

    transport = HandlerTransport(lambda request: Reply(200, b'{"code": 0}'))
    with Client([API], transport=transport) as client:
        ...
    assert transport.requests[0].headers["Authorization"] == "Bearer t"
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus

from ansible_proxy.client.transport import HttpError, Request, StreamResponse


@dataclass(frozen=True)
class Reply:
    """A handler's answer: the status, headers (a bytes body gets its Content-Length),
    and the body, whole or in pieces."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Reply]


class HandlerTransport:
    """Each request answered by `handler`; `requests` keeps them, `open` counts answers
    not closed yet (a client that forgets one holds a connection for ever)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.open = 0
        self.closed = False

    def send(self, request: Request) -> StreamResponse:
        if self.closed:
            raise HttpError("the client was closed")
        self.requests.append(request)
        reply = self.handler(request)
        headers = {name.lower(): value for name, value in reply.headers.items()}
        if isinstance(reply.body, bytes):
            headers.setdefault("content-length", str(len(reply.body)))
        self.open += 1
        return _Handed(self, reply, headers)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        pass  # nothing in flight on another thread: every answer is made in the caller's


class _Handed(StreamResponse):
    def __init__(self, transport: HandlerTransport, reply: Reply, headers: dict[str, str]) -> None:
        try:
            reason = HTTPStatus(reply.status).phrase
        except ValueError:  # a status of no standard
            reason = ""
        super().__init__(reply.status, reason, headers)
        self._transport = transport
        body = reply.body
        self._pieces: Iterator[bytes] = iter((body,) if isinstance(body, bytes) else body)
        self._closed = False

    def read(self) -> bytes:
        return b"".join(self.iter_bytes())

    def iter_bytes(self) -> Iterator[bytes]:
        for piece in self._pieces:
            if piece:
                yield piece

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._transport.open -= 1

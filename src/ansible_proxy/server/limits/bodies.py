"""Request bodies limited per route before they are read (docs/security.md).

Every body is held to `max_body_bytes` (JSON and forms: a few KiB in practice) except
a release upload's, held to `max_upload_bytes` (and streamed to disk by the route). A
declared Content-Length over the limit is answered 413 at once, without reading a byte;
a chunked or undeclared body is counted as the app reads it, and answered 413 as soon as
it passes the limit. Either way the connection is closed, so the rest is never read.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ansible_proxy.protocol import API_PREFIX

_UPLOAD_PREFIX = f"{API_PREFIX}/admin/bins/"
_UPLOAD_SUFFIX = "/releases"
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


def is_upload(method: str, path: str) -> bool:
    """POST /api/v1/admin/bins/{bin}/releases: the one route that takes a large body."""
    return method == "POST" and path.startswith(_UPLOAD_PREFIX) and path.endswith(_UPLOAD_SUFFIX)


class BodyLimit:
    """ASGI middleware: 413 in the `{code, message}` envelope for a body over its route's limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY:
            await self.app(scope, receive, send)  # the fast path's GETs: nothing to count
            return
        upload = is_upload(scope["method"], scope["path"])
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        what = "an upload" if upload else "a request body"
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, f"{what} of {declared} bytes is larger than the limit of {limit}")
            return
        await _Counted(self.app, limit, what).run(scope, receive, send)


class _Counted:
    """One request whose body is counted as the app reads it."""

    def __init__(self, app: ASGIApp, limit: int, what: str) -> None:
        self.app = app
        self.limit = limit
        self.what = what
        self.received = 0
        self.refused = False
        self.started = False

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            if self.refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    self.refused = True
                    if not self.started:
                        await _refuse(send, f"{self.what} is larger than the limit of {self.limit}")
                    return {"type": "http.disconnect"}  # the app stops reading
            return message

        async def guarded_send(message: Message) -> None:
            if self.refused:
                return  # answered 413 already; what the app says after it is dropped
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        await self.app(scope, counted_receive, guarded_send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps({"code": 413, "message": f"{message} bytes"}).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of the body is never read
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})

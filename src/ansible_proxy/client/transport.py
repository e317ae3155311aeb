"""The host side's HTTP client (agent, inspector, cluster proxy): what every request shares.

`Client` sends each request through one transport (wire.py): `http_pool.HttpPool`, keep-
alive HTTP/1.1 over `http.client`, unless another is given (a test's, answering in
process). On top of it: the bearer token sent to the API's origin only; redirects
followed within the client's origins, any other refused; JSON bodies and query strings.
Failures of the connection are `HttpError`, a timed-out one `HttpTimeout`.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from ansible_proxy.client.http_pool import HttpPool
from ansible_proxy.client.wire import (
    HttpError,
    HttpTimeout,
    Origin,
    Request,
    Response,
    StreamResponse,
    Transport,
    origin,
)
from ansible_proxy.errors import RetryableError

# Importers of this module get the wire's names from here too.
__all__ = [
    "Client",
    "HttpError",
    "HttpTimeout",
    "Origin",
    "OriginBearer",
    "Request",
    "Response",
    "StreamResponse",
    "Transport",
    "origin",
]

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class OriginBearer:
    """`Authorization: Bearer <token>` on requests to the origin of `api` only; none with
    an empty token."""

    token: str = field(repr=False)
    api: str

    def header(self, to: Origin) -> str | None:
        return f"Bearer {self.token}" if self.token and to == origin(self.api) else None


class Client:
    """Requests through one transport, for one tick; close it (or use `with`) after.

    The default transport (http_pool.HttpPool) keeps connections per origin: a request
    made while another answer streams (a progress report during a download) goes on a
    second connection beside it. `transport` replaces it (a test's, answering in process).

    `origins`: the URLs whose origins redirects may lead to (BIN_MANAGER_API and
    DOWNLOAD_BASE_URL); `timeout` (HTTP_TIMEOUT) bounds each connect, send and read;
    `ca_bundle` and `insecure` are the default transport's TLS.
    """

    def __init__(
        self,
        origins: Iterable[str] = (),
        bearer: OriginBearer | None = None,
        ca_bundle: Path | None = None,
        insecure: bool = False,
        timeout: float = 10.0,
        max_redirects: int = MAX_REDIRECTS,
        transport: Transport | None = None,
    ) -> None:
        self.allowed = {origin(url) for url in origins}
        self.bearer = bearer
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.transport: Transport = transport or HttpPool(ca_bundle, insecure)

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
        self.transport.close()

    def abort(self) -> None:
        """From another thread: stop the requests in flight, so a read blocked on one
        returns at once and its request fails (http_probe.py's whole-call deadline, which
        must hold in the cluster proxy's worker threads, where no timer signal can)."""
        self.transport.abort()

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
            bearer = auth or self.bearer
            token = bearer.header(origin(url)) if bearer else None
            request = Request(method, url, {**sent, **_auth(token)}, body, seconds)
            answer = self.transport.send(request)
            location = answer.headers.get("location")
            if answer.status not in REDIRECTS or not location or not self.max_redirects:
                try:
                    yield answer
                finally:
                    answer.close()
                return
            answer.close()
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


def _auth(bearer: str | None) -> dict[str, str]:
    return {"Authorization": bearer} if bearer else {}

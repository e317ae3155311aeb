"""The bin-manager API (docs/api.md, the wire contract) over one reused transport.Client.

Owns every API call of the agent: keepalive, latest sha256, progress and version
reports. Network errors, timeouts, 5xx and garbage answers become RetryableError. A
route the server does not have (NOT_OFFERED: an original-design server) means no
enrolment, no batch poll, no signature — never a failure.
The bearer token lives in the client (sent to the API's origin only) and is never logged.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from ansible_proxy import __version__
from ansible_proxy.client.deadline import DeadlineExceeded, deadline
from ansible_proxy.client.http_pool import HttpPool
from ansible_proxy.client.transport import Client, HttpError, HttpTimeout, OriginBearer, Response
from ansible_proxy.errors import ConfigError, RetryableError
from ansible_proxy.names import is_sha256


def node_info(
    cpu_arch: str, os_release: str, node_name: str, labels: Mapping[str, str] | None = None
) -> dict[str, object]:
    """The body of POST /keepalive (and the manifest's nodeInfo), with our version.

    `labels` (NODE_LABELS) only when there are some: a server from before labels, and the
    wire contract, see exactly the four fields they always saw.
    """
    info: dict[str, object] = {
        "cpuArch": cpu_arch,
        "osRelease": os_release,
        "nodeName": node_name,
        "binProxyVersion": __version__,
    }
    if labels:
        info["labels"] = {key: labels[key] for key in sorted(labels)}
    return info


class UnknownBin(RetryableError):
    """The bin-manager has nothing published under this name (yet)."""


class CredentialRefused(ConfigError):
    """The bin-manager refused this node's credential for good (revoked, or the name is
    bound to another): a person must act (docs/security.md)."""


class NotEnrolled(RetryableError):
    """HTTP 401 to this node's own token, not naming a revocation: the bin-manager does
    not know the token (its database restored from a backup, or lost). The node enrols
    again (agent/enrolment.py)."""


@dataclass(frozen=True)
class Enrolled:
    """POST /enrol's answer: "enrolled", "pending" or "unsupported" (a server without
    enrolment; `answer` then names what it said); `legacy_writes`: while pending, the
    server still takes this node's writes as before (BIN_MANAGER_NODE_AUTH=migrate)."""

    status: str
    fingerprint: str
    legacy_writes: bool
    answer: str = ""


# A server without the route answers one of these, with a body of its own (an original-
# design server, nginx, Go, Flask, an older bin-manager): SPEC §9 decides by the status
# alone. This project's bin-manager never answers them on a route it has.
NOT_OFFERED = frozenset({404, 405, 501})


# A progress reason: one line of at most this many characters (the server refuses more).
MAX_REASON = 300
# The held bins one keepalive may name (`held`), each reason one line of MAX_REASON at most.
MAX_HOLDS = 64


@dataclass(frozen=True)
class Batch:
    """GET /bins: bin name → the sha256 this node should run, and the answer's ETag.

    `withdrawn`: bin name → releases a pin took back (newest first); only bins with some.
    """

    bins: dict[str, str]
    etag: str | None
    withdrawn: dict[str, list[str]] = field(default_factory=dict)


def make_client(
    urls: list[str],
    token: str,
    ca_bundle: Path | None,
    insecure: bool,
    timeout: float,
) -> Client:
    """One client for the whole tick; redirects to another scheme, host or port are refused.

    `urls[0]` is BIN_MANAGER_API: the token goes to its origin (scheme, host and port)
    only, never to a DOWNLOAD_BASE_URL elsewhere (a cluster's plain-HTTP cache).
    """
    pool = HttpPool(ca_bundle, insecure)
    if any(url.lower().startswith("https://") for url in urls):
        pool.tls_context()  # an unreadable CA_BUNDLE is a configuration error, now
    bearer = OriginBearer(token, urls[0]) if token else None
    return Client(urls, bearer, timeout=timeout, transport=pool)


MAX_STATEMENT = 4096  # bytes
MAX_SIGNATURES = 16  # per statement
MAX_STATEMENTS = 16  # per release


@dataclass(frozen=True)
class Signed:
    """One signed statement of a release and its signatures, as the bin-manager serves it
    (client/verified.py checks them)."""

    statement: bytes
    signatures: tuple[str, ...]


class Api:
    """Calls of docs/api.md, the wire contract, each translating failures into our errors."""

    def __init__(
        self,
        client: Client,
        base: str,
        node_name: str,
        arch: str,
        timeout: float | None = None,
    ) -> None:
        self.client = client
        # HTTP_TIMEOUT bounds each whole request; the client's own timeout is per read.
        self.timeout = timeout if timeout is not None else client.timeout
        self.base = base.rstrip("/")
        self.node_name = node_name
        self.arch = arch
        self.batch_offered: bool | None = None  # None: not asked yet
        self.node_token = False  # this node's own token is the bearer (use_token)
        self._legacy_bearer = client.bearer  # BIN_MANAGER_TOKEN's, or none (forget_token)
        self.not_enrolled = ""  # a 401 to that token: the answer, for the enrolment again
        # The bin-manager's clock (its Date header) when it last served signatures: a
        # signature expired by this host's clock only is this host's fault (its clock).
        self.server_time: float | None = None
        # bin → sha256s the bin-manager withdrew (pinned away from), from the last answers
        # of latest() and latest_all(); servers that never say so leave it empty.
        self.withdrawn: dict[str, list[str]] = {}

    def _request(self, method: str, path: str, **kwargs: Any) -> Response:
        url = f"{self.base}{path}"
        try:
            with deadline(self.timeout):
                return self.client.request(method, url, **kwargs)
        except (HttpTimeout, DeadlineExceeded):
            raise RetryableError(
                f"API {method} {url}: no complete answer within {self.timeout:g} s (HTTP_TIMEOUT)"
            ) from None
        except HttpError as exc:
            raise RetryableError(f"API {method} {url}: unreachable: {exc}") from None

    def _data(self, response: Response, what: str) -> Any:
        if response.status in (401, 403) and "revoked" in _message(response):
            raise CredentialRefused(f"API {what}: HTTP {response.status}: {_message(response)}")
        if response.status == 401 and self.node_token:
            # The server answers strangers alike (no name enumeration), and only a revoked
            # token's holder is told so: any other 401 to our own token means it is unknown.
            self.not_enrolled = f"API {what}: HTTP 401: {_message(response)}"
            raise NotEnrolled(self.not_enrolled)
        if response.status >= 300:
            raise RetryableError(f"API {what}: HTTP {response.status}: {_message(response)}")
        try:
            body = response.json()
        except ValueError:
            raise RetryableError(f"API {what}: answer is not JSON") from None
        if not isinstance(body, dict) or body.get("code") != 0:
            raise RetryableError(f"API {what}: unexpected answer: {str(body)[:120]}")
        return body.get("data")

    def use_token(self, token: str) -> None:
        """Send `token` (this node's own) as the bearer from now on, to the API's origin."""
        self.client.bearer = OriginBearer(token, self.base)
        self.node_token = True

    def forget_token(self) -> None:
        """Send what was sent before enrolment again (BIN_MANAGER_TOKEN, or nothing)."""
        self.client.bearer = self._legacy_bearer
        self.node_token = False

    def enrol(
        self, node_info: Mapping[str, object], node_token: str | None, enrolment: str
    ) -> Enrolled:
        """POST /enrol: this node's token (None for a cluster proxy's node), shown with the
        enrolment token when there is one. "unsupported" from a server without enrolment."""
        body: dict[str, object] = dict(node_info)
        if node_token is not None:
            body["nodeToken"] = node_token
        auth = OriginBearer(enrolment, self.base)  # none at all without an enrolment token
        response = self._request("POST", "/enrol", json=body, auth=auth)
        # Our /enrol asks no credential (none sent: pending), so a 401 to a request without
        # one is a server that wants its own token on every route: it has no enrolment.
        if response.status in NOT_OFFERED or (response.status == 401 and not enrolment):
            return Enrolled("unsupported", "", False, f"HTTP {response.status}")
        if response.status in (401, 409):
            raise CredentialRefused(f"API POST /enrol: {_message(response)}")
        data = self._data(response, "POST /enrol")
        if not isinstance(data, dict) or data.get("status") not in ("enrolled", "pending"):
            raise RetryableError(f"API POST /enrol: unexpected answer: {str(data)[:120]}")
        return Enrolled(
            str(data["status"]), str(data.get("fingerprint", "")), data.get("legacyWrites") is True
        )

    def node_known(self) -> bool:
        """GET /keepalive: False when the bin-manager does not know this node."""
        response = self._request("GET", "/keepalive", params={"nodeName": self.node_name})
        if response.status == 404:
            return False
        self._data(response, "GET /keepalive")
        return True

    def register(self, node_info: Mapping[str, object]) -> None:
        """POST /keepalive with this node's info."""
        self._data(self._request("POST", "/keepalive", json=node_info), "POST /keepalive")

    def latest(self, bin_name: str) -> str:
        """GET /bins/{bin}: the sha256 this node should run."""
        what = f"GET /bins/{bin_name}"
        response = self._request(
            "GET", f"/bins/{bin_name}", params={"nodeName": self.node_name, "arch": self.arch}
        )
        if response.status == 404:
            raise UnknownBin(f"API {what}: not published: {_message(response)}")
        data = self._data(response, what)
        sha = data.get("sha256") if isinstance(data, dict) else None
        if not isinstance(sha, str) or not is_sha256(sha):
            raise RetryableError(f"API {what}: no valid sha256 in answer")
        withdrawn = _sha_list(data.get("withdrawn"))
        if withdrawn:
            self.withdrawn[bin_name] = withdrawn
        else:
            self.withdrawn.pop(bin_name, None)
        return sha

    def latest_all(self, previous: Batch | None = None) -> Batch | None:
        """GET /bins (one request for every bin); None when the server does not offer it.

        404, 405 or 501 means an original-design server: remembered, not asked again. With
        `previous`, sends its ETag as If-None-Match and returns `previous` on 304.
        Sets `self.withdrawn` from the answer (or from `previous` on 304).
        """
        if self.batch_offered is False:
            return None
        headers = {"If-None-Match": previous.etag} if previous and previous.etag else {}
        params = {"nodeName": self.node_name, "arch": self.arch}
        response = self._request("GET", "/bins", params=params, headers=headers)
        if response.status in NOT_OFFERED:
            self.batch_offered = False
            return None
        self.batch_offered = True
        if response.status == 304 and previous is not None:
            # Saved by the caller (a state file): checked like an answer.
            self.withdrawn = _withdrawn_map(previous.withdrawn)
            return previous
        data = self._data(response, "GET /bins")
        bins = data.get("bins") if isinstance(data, dict) else None
        if not isinstance(bins, dict) or not all(
            isinstance(name, str) and isinstance(sha, str) and is_sha256(sha)
            for name, sha in bins.items()
        ):
            raise RetryableError("API GET /bins: no valid {bin: sha256} map in answer")
        withdrawn = _withdrawn_map(data.get("withdrawn"))
        self.withdrawn = {name: list(shas) for name, shas in withdrawn.items()}
        return Batch(dict(bins), response.headers.get("etag"), withdrawn)

    def signature(self, bin_name: str, sha: str) -> tuple[Signed, ...] | None:
        """GET /bins/{bin}/signature: the signed statements of release `sha` for this arch,
        highest sequence first (at most MAX_STATEMENTS), or None when the bin-manager has
        none (404, or no such route). An older server serves only the highest."""
        what = f"GET /bins/{bin_name}/signature"
        params = {"sha256": sha, "arch": self.arch, "nodeName": self.node_name}
        response = self._request("GET", f"/bins/{bin_name}/signature", params=params)
        self.server_time = _date(response.headers.get("date"))
        if response.status in NOT_OFFERED:
            return None
        data = self._data(response, what)
        highest = _signed(data)
        if highest is None:
            raise RetryableError(f"API {what}: no statement and signatures in answer")
        # `statements`: every statement of the release, highest first (newer servers), so
        # that a statement this host does not trust cannot hide one it does.
        more = data.get("statements")
        if more is not None and not isinstance(more, list):
            raise RetryableError(f"API {what}: `statements` is not a list")
        found = [highest]
        for item in (more or [])[:MAX_STATEMENTS]:
            one = _signed(item)
            if one is None:
                raise RetryableError(f"API {what}: a malformed entry in `statements`")
            if all(one.statement != seen.statement for seen in found):
                found.append(one)
        return tuple(found[:MAX_STATEMENTS])

    def report_bin(self, bin_name: str, sha: str) -> None:
        """POST /bins/{bin}: what the node now runs."""
        body = {"nodeName": self.node_name, "binName": bin_name, "sha256": sha, "version": "latest"}
        self._data(self._request("POST", f"/bins/{bin_name}", json=body), f"POST /bins/{bin_name}")

    def report_progress(
        self,
        bin_name: str,
        target: str,
        seconds: int,
        status: str,
        reason: str = "",
        cause: str = "",
    ) -> None:
        """POST /bins/{bin}/progress (in_progress, success or failed).

        `reason` ("inspector: alerts: firing HighErrorRate": who, then why) is sent only when
        not empty, made one line of at most MAX_REASON characters so the server accepts it.
        `cause` (client/causes.py: release, host or refused) only with `failed`.
        """
        body: dict[str, object] = {
            "nodeName": self.node_name,
            "binName": bin_name,
            "targetHash": target,
            "processingTime": seconds,
            "status": status,
        }
        line = one_line(reason)
        if line:
            body["reason"] = line
        if cause and status == "failed":
            body["cause"] = cause
        path = f"/bins/{bin_name}/progress"
        self._data(self._request("POST", path, json=body), f"POST {path}")


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """`text` as the server accepts a reason: control characters as spaces, runs of
    spaces as one, stripped, cut to `limit` characters (the cut marked with "…")."""
    spaced = "".join(
        " " if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") else char
        for char in text
    )
    line = " ".join(spaced.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _signed(value: object) -> Signed | None:
    """`{"statement": str, "signatures": [str, …]}` as a Signed (signatures beyond
    MAX_SIGNATURES dropped); None when it is not that or the statement is too long."""
    if not isinstance(value, dict):
        return None
    statement, signatures = value.get("statement"), value.get("signatures")
    if not isinstance(statement, str) or not isinstance(signatures, list):
        return None
    data = statement.encode("utf-8", "surrogatepass")
    if len(data) > MAX_STATEMENT or not all(isinstance(sig, str) for sig in signatures):
        return None
    return Signed(data, tuple(signatures[:MAX_SIGNATURES]))


def _sha_list(value: object) -> list[str]:
    """A list of sha256 values, or [] for anything else (an old server says nothing)."""
    if isinstance(value, list) and all(isinstance(v, str) and is_sha256(v) for v in value):
        return list(value)
    return []


def _withdrawn_map(value: object) -> dict[str, list[str]]:
    """GET /bins' `withdrawn`: {bin: [sha256, …]}; a malformed entry is left out."""
    if not isinstance(value, dict):
        return {}
    found = {name: _sha_list(shas) for name, shas in value.items() if isinstance(name, str)}
    return {name: shas for name, shas in found.items() if shas}


def _date(value: str | None) -> float | None:
    """An HTTP Date header as Unix time; None when there is none or it is not a date."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT, whatever it says
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _message(response: Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:80].strip() or response.reason
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:200]
    return response.reason

"""The keepalive body: labels only when the node has some, in the wire contract's shape;
what a server without a route (an original-design one) answers, and what is a refusal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ansible_proxy import __version__
from ansible_proxy.client.api import (
    Api,
    CredentialRefused,
    Enrolled,
    NotEnrolled,
    make_client,
    node_info,
)
from ansible_proxy.errors import RetryableError
from ansible_proxy.protocol import NodeInfo
from tests.support.original_server import UNKNOWN_ROUTES, OriginalServer, Unknown, serve_original


def test_without_labels_the_body_is_the_original_four_fields() -> None:
    none: tuple[dict[str, str] | None, ...] = (None, {})
    for labels in none:
        assert node_info("x86_64", "Debian 12", "n1", labels) == {
            "cpuArch": "x86_64",
            "osRelease": "Debian 12",
            "nodeName": "n1",
            "binProxyVersion": __version__,
        }


def test_labels_are_sent_as_a_mapping_the_server_accepts() -> None:
    body = node_info("x86_64", "Debian 12", "n1", {"zone": "a", "tier": "canary"})
    assert body["labels"] == {"tier": "canary", "zone": "a"}
    assert json.dumps(body["labels"]) == '{"tier": "canary", "zone": "a"}'  # sorted by key
    assert NodeInfo.model_validate(body).labels == {"tier": "canary", "zone": "a"}


# A server without enrolment is told by the status of POST /enrol alone (SPEC §9), whatever
# its body; what this project's bin-manager answers there is never taken for that.
OUR_OLDER_SERVER = Unknown(
    404, "application/json", b'{"code": 404, "message": "no such endpoint: see /docs"}'
)


@contextmanager
def api_of(server: OriginalServer) -> Iterator[Api]:
    with make_client([server.api], "", None, False, 5.0) as client:
        yield Api(client, server.api, "n1", "x86_64")


@pytest.mark.parametrize(
    "unknown",
    [*UNKNOWN_ROUTES.values(), OUR_OLDER_SERVER],
    ids=[*UNKNOWN_ROUTES, "older-bin-manager"],
)
def test_a_route_the_server_lacks_is_unsupported_whatever_its_body(unknown: Unknown) -> None:
    with serve_original(unknown) as server, api_of(server) as api:
        enrolled = api.enrol(node_info("x86_64", "Debian 12", "n1"), "t" * 43, "")
        batch = api.latest_all()
        signed = api.signature("hello", "a" * 64)
    assert enrolled == Enrolled("unsupported", "", False, f"HTTP {unknown.status}")
    assert (batch, api.batch_offered, signed) == (None, False, None)


def test_a_server_asking_its_own_token_everywhere_has_no_enrolment() -> None:
    """Our /enrol asks no credential: a 401 to a request without one is another server's."""
    with serve_original(token="its-own") as server, api_of(server) as api:
        enrolled = api.enrol(node_info("x86_64", "Debian 12", "n1"), "t" * 43, "")
    assert enrolled.status == "unsupported"


@pytest.mark.parametrize(
    ("status", "refused"),
    [
        (401, CredentialRefused),
        (409, CredentialRefused),
        (429, RetryableError),
        (500, RetryableError),
    ],
)
def test_a_refusal_is_never_taken_for_unsupported(status: int, refused: type[Exception]) -> None:
    """A wrong enrolment token (401), a name bound elsewhere (409), a busy or broken server."""
    answer = Unknown(status, "application/json", json.dumps({"code": status}).encode())
    info = node_info("x86_64", "Debian 12", "n1")
    with serve_original(answer) as server, api_of(server) as api, pytest.raises(refused):
        api.enrol(info, "t" * 43, "an-enrolment-token")


def test_a_cause_is_sent_with_failed_only() -> None:
    with serve_original() as server, api_of(server) as api:
        api.report_progress("hello", "a" * 64, 0, "in_progress", cause="host")
        api.report_progress("hello", "a" * 64, 3, "failed", "agent: stalled", "host")
        api.report_progress("hello", "a" * 64, 3, "failed", "watch: BACKOFF")
    first, failed, without = server.seen.progress
    assert "cause" not in first
    assert (failed["status"], failed["cause"]) == ("failed", "host")
    assert "cause" not in without  # absent: the server takes it as the release's


def test_a_401_to_this_node_s_own_token_says_the_server_does_not_know_it() -> None:
    """Strangers are all answered alike; only a revoked credential's holder hears why."""
    with serve_original(token="the-server-s-own") as server, api_of(server) as api:
        with pytest.raises(RetryableError) as before:  # not enrolled: nothing to tell
            api.node_known()
        assert not isinstance(before.value, NotEnrolled)
        api.use_token("n" * 43)
        with pytest.raises(NotEnrolled, match="HTTP 401"):
            api.node_known()
        assert api.not_enrolled.startswith("API GET /keepalive: HTTP 401")
        api.forget_token()  # back to what it sent before it enrolled
        with pytest.raises(RetryableError) as after:
            api.node_known()
        assert not isinstance(after.value, NotEnrolled)

"""The agent's API client: withdrawn releases from GET /bins and /bins/{bin}, and reasons
with its progress reports, against a real bin-manager and against garbage answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from ansible_proxy.client.api import MAX_REASON, Api, Batch, make_client
from ansible_proxy.client.transport import Client
from tests.support.loopback import Exchange, Handle, Loopback, answer
from tests.support.server import BinManager

SHA_A, SHA_B = "a" * 64, "b" * 64
NODE = {"cpuArch": "x86_64", "osRelease": "Debian 12", "nodeName": "web-01", "binProxyVersion": "1"}


MakeApi = Callable[[str], Api]


@pytest.fixture
def make_api() -> Iterator[MakeApi]:
    """Api(base) as the agent builds it (node web-01, x86_64); its clients closed after."""
    clients: list[Client] = []

    def make(base: str) -> Api:
        clients.append(make_client([base], "", None, False, 10.0))
        return Api(clients[-1], base, "web-01", "x86_64")

    yield make
    for client in clients:
        client.close()


def test_withdrawn_is_read_from_both_answers(bin_manager: BinManager, make_api: MakeApi) -> None:
    v1 = bin_manager.publish("app", b"app one")
    v2 = bin_manager.publish("app", b"app two")
    v3 = bin_manager.publish("app", b"app three")
    tool = bin_manager.publish("tool", b"tool one")
    api = make_api(bin_manager.api)
    api.register(NODE)
    assert api.latest("app") == v3
    assert api.withdrawn == {}

    bin_manager.pin("app", v1)
    assert api.latest("app") == v1  # callers still get the sha256 alone
    assert api.withdrawn == {"app": [v3, v2]}
    batch = api.latest_all()
    assert batch is not None
    assert batch.bins == {"app": v1, "tool": tool}
    assert batch.withdrawn == {"app": [v3, v2]}
    api.withdrawn = {}
    assert api.latest_all(batch) is batch  # 304: what was saved stands
    assert api.withdrawn == {"app": [v3, v2]}
    garbled = Batch(batch.bins, batch.etag, {"app": [v3, "?"], "tool": [v2]})  # a bad state file
    assert api.latest_all(garbled) is garbled
    assert api.withdrawn == {"tool": [v2]}

    bin_manager.publish("app", b"app four")
    assert api.latest_all(batch).withdrawn == {}  # type: ignore[union-attr]
    assert api.withdrawn == {}
    assert Batch({"app": v1}, '"etag"').withdrawn == {}  # saved by an older agent


def _bodies(received: list[dict[str, object]]) -> Handle:
    """Answer success to every POST, keeping each JSON body."""

    def handle(req: Exchange) -> None:
        received.append(json.loads(req.body))
        req.reply(200, b'{"code": 0, "message": "success"}', "application/json")

    return handle


def test_a_reason_is_sent_only_when_given_and_always_acceptable(make_api: MakeApi) -> None:
    received: list[dict[str, object]] = []
    with Loopback(_bodies(received), keep_alive=False) as server:
        api = make_api(f"{server.url}/api/v1")
        api.report_progress("web", SHA_A, 3, "in_progress")
        api.report_progress("web", SHA_A, 3, "failed", "")
        api.report_progress("web", SHA_A, 9, "failed", "watch: web is BACKOFF\nexit status 3\x1b")
        api.report_progress("web", SHA_A, 9, "failed", "inspector: " + "x" * 400)
    assert "reason" not in received[0]
    assert "reason" not in received[1]
    assert received[2]["reason"] == "watch: web is BACKOFF exit status 3"
    long = received[3]["reason"]
    assert isinstance(long, str)
    assert len(long) == MAX_REASON
    assert long.startswith("inspector: xxx")
    assert long.endswith("…")


def test_the_bin_manager_stores_what_the_client_sends(
    bin_manager: BinManager, make_api: MakeApi
) -> None:
    sha = bin_manager.publish("web", b"web one")
    api = make_api(bin_manager.api)
    api.register(NODE)
    api.report_progress("web", sha, 9, "failed", "watch: web is\tBACKOFF\n" + "y" * 500)
    progress = bin_manager.admin_get("/nodes/web-01").json()["data"]["progress"]
    assert progress[0]["reason"].startswith("watch: web is BACKOFF yyy")
    assert len(progress[0]["reason"]) == MAX_REASON


def _latest(withdrawn: object) -> Handle:
    data = {"sha256": SHA_A, "version": "latest", "withdrawn": withdrawn}
    body = json.dumps({"code": 0, "message": "success", "data": data}).encode()
    return answer(200, body, "application/json")


@pytest.mark.parametrize(
    "withdrawn", ["nope", 5, [SHA_B, "not a sha"], [SHA_B.upper()], {"x": SHA_B}, None]
)
def test_a_garbage_withdrawn_is_ignored(make_api: MakeApi, withdrawn: object) -> None:
    with Loopback(_latest(withdrawn), keep_alive=False) as server:
        api = make_api(f"{server.url}/api/v1")
        api.withdrawn = {"web": [SHA_B]}  # from an earlier answer
        assert api.latest("web") == SHA_A
        assert api.withdrawn == {}


def test_a_garbage_batch_withdrawn_keeps_only_good_entries(make_api: MakeApi) -> None:
    withdrawn = {"good": [SHA_B], "bad": ["nope"], "empty": [], "odd": "x"}
    data = {"arch": "x86_64", "bins": {"good": SHA_A, "bad": SHA_A}, "withdrawn": withdrawn}
    body = json.dumps({"code": 0, "message": "success", "data": data}).encode()
    with Loopback(answer(200, body, "application/json"), keep_alive=False) as server:
        api = make_api(f"{server.url}/api/v1")
        batch = api.latest_all()
    assert batch is not None
    assert batch.withdrawn == api.withdrawn == {"good": [SHA_B]}
    data["withdrawn"] = ["not", "a", "map"]
    body = json.dumps({"code": 0, "message": "success", "data": data}).encode()
    with Loopback(answer(200, body, "application/json"), keep_alive=False) as server:
        api = make_api(f"{server.url}/api/v1")
        batch = api.latest_all()
    assert batch is not None
    assert (batch.bins, batch.withdrawn) == ({"good": SHA_A, "bad": SHA_A}, {})

"""People and API tokens (docs/security.md "People, roles and tokens"), in this process:
a CI token for one bin publishes that bin and nothing else; tokens expire and are revoked;
people are added with a one-time password, change role, are disabled (their sessions end
at once) and enabled; the admin token keeps every right (break-glass); no password or
token ever reaches the log."""

from __future__ import annotations

import secrets
import sqlite3
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.answers import enrol, sha
from tests.support.inprocess import BinManagerApp, BinManagerAppFactory
from tests.support.team import (
    add_person,
    admin_call,
    choose_password,
    log_in,
    make_token,
    password_of,
    person_browser,
)

UPLOAD = {"Content-Type": "application/octet-stream"}


def _as(server: BinManagerApp, token: str) -> httpx.Client:
    return server.client(
        base_url=f"{server.api}/admin", headers={"Authorization": f"Bearer {token}"}
    )


def _refused(answer: httpx.Response, right: str) -> str:
    assert answer.status_code == 403, answer.text
    message: str = answer.json()["message"]
    assert f"lacks the right '{right}'" in message
    return message


def test_a_ci_token_for_web_publishes_web_and_is_refused_everything_else(
    bin_manager_app: BinManagerApp,
) -> None:
    server = bin_manager_app
    before = server.publish("web", b"web v1")
    server.publish("api", b"api v1")
    ci = make_token(server, "ci-web", "publisher", ["web"], expires_days=90)
    assert ci.startswith("bmt_")
    with server.client(base_url=server.api) as agent:
        pending = enrol(agent, "host-1", secrets.token_urlsafe(32))
        assert pending.status_code == 202, pending.text
    with _as(server, ci) as http:
        published = http.post("/bins/web/releases", content=b"web v2", headers=UPLOAD)
        assert published.status_code == 200, published.text
        assert published.json()["data"]["sha256"] == sha(b"web v2")

        message = _refused(
            http.post("/bins/api/releases", content=b"api v2", headers=UPLOAD), "publish"
        )
        assert "token ci-web" in message
        assert "on bin 'api'" in message
        _refused(http.post("/bins/web/pin", json={"sha256": before}), "pin")
        _refused(http.post("/bins/web/rollout/promote"), "rollout")
        _refused(http.post("/bins/web/pause"), "pause")
        _refused(http.request("DELETE", f"/bins/web/releases/{before}"), "delete")
        _refused(http.post("/credentials/host-1/approve", json={}), "nodes")
        _refused(http.post("/credentials/host-1/revoke"), "nodes")
        _refused(http.post("/tokens", json={"name": "more", "role": "admin"}), "tokens")
        _refused(http.post("/users", json={"name": "eve", "role": "admin"}), "people")
        _refused(http.post("/proxies", json={"name": "p1"}), "proxies")
        assert http.get("/bins").status_code == 200  # reading is never limited
    # nothing of what it was refused happened
    bins = {row["binName"]: row for row in server.admin_get("/bins").json()["data"]}
    assert bins["web"]["latest"]["x86_64"] == sha(b"web v2")
    assert bins["api"]["latest"]["x86_64"] == sha(b"api v1")
    assert bins["web"]["paused"] is False
    assert server.credential("host-1")["status"] == "none"
    names = [row["name"] for row in admin_call(server, "GET", "/tokens")]
    assert names == ["ci-web"]
    assert ci not in server.log()


def test_tokens_are_listed_by_fingerprint_and_refused_once_revoked_or_expired(
    bin_manager_app: BinManagerApp,
) -> None:
    server = bin_manager_app
    ops = make_token(server, "ops", "operator", None, expires_days=None)
    old = make_token(server, "old", "viewer")
    with sqlite3.connect(server.data_dir / "bin-manager.sqlite3") as db:
        yesterday = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
        db.execute(
            "UPDATE api_tokens SET expires_at = ? WHERE name = 'old'", (yesterday.isoformat(" "),)
        )
    with _as(server, ops) as http:
        assert http.get("/bins").status_code == 200
    with _as(server, old) as http:
        expired = http.get("/bins")
        assert expired.status_code == 401
        assert "the token 'old' expired" in expired.json()["message"]
    listed = {row["name"]: row for row in admin_call(server, "GET", "/tokens")}
    assert listed["ops"]["role"] == "operator"
    assert listed["ops"]["bins"] is None
    assert listed["ops"]["expiresAt"] is None
    assert listed["ops"]["lastUsedAt"] is not None
    assert listed["ops"]["state"] == "active"
    assert listed["old"]["state"] == "expired"
    assert len(listed["ops"]["fingerprint"]) == 12
    assert "token" not in listed["ops"]  # shown once, at creation
    admin_call(server, "POST", "/tokens/ops/revoke")
    with _as(server, ops) as http:
        revoked = http.get("/bins")
        assert revoked.status_code == 401
        assert "'ops' was revoked" in revoked.json()["message"]
    with server.client(base_url=f"{server.api}/admin", headers=server.admin_headers) as http:
        again = http.post("/tokens", json={"name": "ops", "role": "viewer"})
        assert again.status_code == 409  # a revoked token keeps its name
        assert (
            http.post("/tokens", json={"name": "x", "role": "viewer", "bins": ["web"]}).status_code
            == 400
        )
        assert http.post("/tokens", json={"name": "x", "role": "root"}).status_code == 400


def test_people_are_added_change_role_and_a_disabled_person_is_refused_at_once(
    bin_manager_app: BinManagerApp,
) -> None:
    server = bin_manager_app
    server.publish("web", b"web v1")
    # the first person needs no role: an installation's first `users add` is its first admin
    first = admin_call(server, "POST", "/users", json={"name": "root-alice"})
    assert first["role"] == "admin"
    assert first["mustChangePassword"] is True
    with server.client(base_url=f"{server.api}/admin", headers=server.admin_headers) as http:
        assert http.post("/users", json={"name": "nobody"}).status_code == 400
        assert http.post("/users", json={"name": "root-alice", "role": "viewer"}).status_code == 409
        last = http.post("/users/root-alice/disable")
        assert last.status_code == 409  # the only enabled admin
        assert "only enabled admin" in last.json()["message"]
    with person_browser(server, "bob", "viewer") as bob:
        page = bob.get("/dashboard/bins/web")
        assert page.status_code == 200
        assert "bob · viewer" in page.text
        assert "/pause" not in page.text  # no button it could not use
        admin_call(server, "POST", "/users/bob/role", json={"role": "operator", "bins": ["web*"]})
        page = bob.get("/dashboard/bins/web")
        assert "bob · operator for web*" in page.text
        assert 'action="/dashboard/bins/web/pause"' in page.text

        admin_call(server, "POST", "/users/bob/disable")
        gone = bob.get("/dashboard/bins/web")  # the same cookie, at once
        assert gone.status_code == 303
        assert gone.headers["location"].startswith("/dashboard/login")
    with server.client(base_url=server.url) as browser:
        refused = log_in(browser, "bob", password_of("bob"))
        assert refused.status_code == 401
        assert "disabled" in refused.text
    people = {row["name"]: row for row in admin_call(server, "GET", "/users")}
    assert people["bob"]["disabled"] is True
    assert people["bob"]["role"] == "operator"
    assert people["bob"]["bins"] == ["web*"]
    admin_call(server, "POST", "/users/bob/enable")
    with server.client(base_url=server.url) as browser:
        assert log_in(browser, "bob", password_of("bob")).status_code == 303


def test_a_one_time_password_must_be_replaced_before_anything_else(
    bin_manager_app: BinManagerApp,
) -> None:
    server = bin_manager_app
    given = add_person(server, "carol", "operator")
    with server.client(base_url=server.url) as browser:
        wrong = log_in(browser, "carol", given + "x")
        assert wrong.status_code == 401
        assert "Wrong name or password" in wrong.text
        assert log_in(browser, "carol", given).headers["location"].startswith("/dashboard/password")
        held = browser.get("/dashboard/")
        assert held.status_code == 303
        assert held.headers["location"].startswith("/dashboard/password")
        assert choose_password(browser, given, "short").status_code == 400
        assert choose_password(browser, given, "carol-is-my-name-1").status_code == 400
        assert choose_password(browser, given, given).status_code == 400
        assert choose_password(browser, given, password_of("carol")).status_code == 303
        assert browser.get("/dashboard/").status_code == 200
    with server.client(base_url=server.url) as browser:
        assert log_in(browser, "carol", given).status_code == 401  # one time only
        assert log_in(browser, "carol", password_of("carol")).headers["location"] == "/dashboard/"


def test_the_admin_token_keeps_every_right_and_secrets_never_reach_the_log(
    bin_manager_app_factory: BinManagerAppFactory,
) -> None:
    server = bin_manager_app_factory()
    ci = make_token(server, "ci", "admin")
    given = add_person(server, "dave", "admin")
    with server.client(base_url=server.url) as browser:
        log_in(browser, "dave", "not dave's password at all")
        log_in(browser, "dave", given)
        choose_password(browser, given, password_of("dave"))
    reset = admin_call(server, "POST", "/users/dave/password")["password"]
    with _as(server, ci) as http:
        assert http.get("/whoami").json()["data"]["kind"] == "token"
    with server.client(base_url=f"{server.api}/admin", headers=server.admin_headers) as http:
        me = http.get("/whoami").json()["data"]
        assert me["kind"] == "admin-token"
        assert me["rights"][-1] == "tokens"
    server.publish("web", b"by the admin token")
    log = server.log()
    for secret in (ci, given, password_of("dave"), reset, "not dave's password at all"):
        assert secret not in log
    assert "person 'dave' added as admin" in log


@pytest.mark.parametrize("role", ["viewer", "publisher"])
def test_who_may_not_manage_people_cannot_read_them_either(
    bin_manager_app: BinManagerApp, role: str
) -> None:
    token = make_token(bin_manager_app, f"t-{role}", role)
    with _as(bin_manager_app, token) as http:
        _refused(http.get("/users"), "people")
        _refused(http.get("/tokens"), "tokens")
        assert http.get("/audit").status_code == 200

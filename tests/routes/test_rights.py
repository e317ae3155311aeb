"""Every route × every role (docs/security.md "Roles"): server/auth/routes.py's table covers
every route of the app, and each admin API route and dashboard form refuses (403, naming
the right) exactly the roles the table says, and lets the others through.

A route added without a rule, or a router without `authorize`, fails
test_every_route_of_the_app_has_a_rule_or_is_open; a form that forgets `admin_form`
fails the dashboard's round.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from ansible_proxy.server.auth.authorize import authorize
from ansible_proxy.server.auth.rights import BIN_RIGHTS, Grant, Right, Role
from ansible_proxy.server.auth.routes import OPEN, RULES
from tests.support.inprocess import BinManagerApp
from tests.support.team import make_token, person_browser

SHA = "e" * 64
# (who, their grant): each gets an API token and, but the CI publisher, a dashboard login.
GRANTS = {
    "viewer": Grant(Role.VIEWER),
    "ci": Grant(Role.PUBLISHER, ("web",)),
    "publisher": Grant(Role.PUBLISHER),
    "webops": Grant(Role.OPERATOR, ("web*",)),
    "operator": Grant(Role.OPERATOR),
    "admin": Grant(Role.ADMIN),
}
PATH_VALUES = {"node_name": "no-such-node", "name": "no-such-name", "sha256": SHA, "arch": "x86_64"}
ACTIONS = {"action": "promote"}


def _app_routes(server: BinManagerApp) -> Iterator[tuple[str, APIRoute, str | None]]:
    """(method, route, the path the app really serves it at) of every route."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before 0.165: routes are flat
        for route in server.app.routes:
            for method in sorted(getattr(route, "methods", None) or ()):
                yield method, route, getattr(route, "path", None)  # type: ignore[misc]
        return
    for context in iter_route_contexts(server.app.routes):
        for method in sorted(context.methods or ()):
            yield method, context.original_route, context.path  # type: ignore[misc]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BinManagerApp]:
    app = BinManagerApp(tmp_path_factory.mktemp("rights"))
    try:
        yield app.start()
    finally:
        app.stop()


@pytest.fixture(scope="module")
def tokens(server: BinManagerApp) -> dict[str, str]:
    server.publish("web", b"web one")
    server.publish("api", b"api one")
    return {
        who: make_token(server, f"token-{who}", grant.role.value, list(grant.bins or ()) or None)
        for who, grant in GRANTS.items()
    }


def test_every_route_of_the_app_has_a_rule_or_is_open(server: BinManagerApp) -> None:
    served = set()
    for method, route, path in _app_routes(server):
        key = ("GET" if method == "HEAD" and ("GET", route.path) in RULES else method, route.path)
        assert key in RULES or key in OPEN, f"{method} {route.path}: no rule in auth/routes.py"
        # The rules are looked up by the route's declared path: it must be where it is served.
        assert path == route.path, f"{route.path} is served at {path}"
        served.add(key)
        if key in RULES and route.path.startswith("/api/"):
            checks = [depends.dependency for depends in route.dependencies]
            assert authorize in checks, f"{method} {route.path}: its router lacks authorize"
    assert set(RULES) - served == set(), "rules for routes the app no longer has"
    assert set(OPEN) - served == set()


def _url(path: str, bin_name: str) -> str:
    values = {"bin_name": bin_name, **PATH_VALUES, **ACTIONS}
    return re.sub(r"\{(\w+)(?::path)?\}", lambda m: values[m.group(1)], path)


def _expected_refusal(who: str, right: Right, bin_name: str | None) -> bool:
    return not GRANTS[who].allows(right, bin_name if right in BIN_RIGHTS else None)


API_RULES = sorted((key, rule) for key, rule in RULES.items() if key[1].startswith("/api/"))


@pytest.mark.parametrize(("key", "rule"), API_RULES, ids=[" ".join(key) for key, _ in API_RULES])
def test_each_admin_route_refuses_exactly_the_roles_without_its_right(
    server: BinManagerApp, tokens: dict[str, str], key: tuple[str, str], rule: Any
) -> None:
    method, path = key
    # no credential, or a wrong one: 401 on every route, before anything is looked at (from
    # an address of its own: each takes from that address' failed-auth budget)
    with server.client(address=f"10.0.{API_RULES.index((key, rule))}.1") as stranger:
        for headers in ({}, {"Authorization": "Bearer bmt_not-a-token-at-all-0123456789"}):
            answer = stranger.request(method, _url(path, "web"), headers=headers)
            assert answer.status_code == 401, (method, path, answer.text)
    with server.client() as http:
        for who, token in tokens.items():
            for bin_name in ("web", "api") if "{bin_name" in path else ("web",):
                answer = http.request(
                    method, _url(path, bin_name), headers={"Authorization": f"Bearer {token}"}
                )
                on = bin_name if "{bin_name" in path else None  # a fleet-wide route: no bin
                if _expected_refusal(who, rule.right, on):
                    assert answer.status_code == 403, (who, method, path, bin_name, answer.text)
                    assert f"lacks the right '{rule.right.value}'" in answer.json()["message"]
                else:
                    assert answer.status_code not in (401, 403), (who, method, path, answer.text)


@pytest.fixture(scope="module")
def browsers(server: BinManagerApp, tokens: dict[str, str]) -> Iterator[dict[str, httpx.Client]]:
    with ExitStack() as stack:
        made = {
            who: stack.enter_context(
                person_browser(
                    server, f"person-{who}", grant.role.value, list(grant.bins or ()) or None
                )
            )
            for who, grant in GRANTS.items()
            if who != "ci"
        }
        made["nobody"] = stack.enter_context(server.client(base_url=server.url))
        yield made


PAGE_RULES = sorted((key, rule) for key, rule in RULES.items() if key[1].startswith("/dash"))


@pytest.mark.parametrize(("key", "rule"), PAGE_RULES, ids=[" ".join(key) for key, _ in PAGE_RULES])
def test_each_dashboard_page_and_form_refuses_exactly_the_roles_without_its_right(
    server: BinManagerApp, browsers: dict[str, httpx.Client], key: tuple[str, str], rule: Any
) -> None:
    method, path = key
    for who, browser in browsers.items():
        for bin_name in ("web", "api") if "{bin_name" in path else ("web",):
            url = _url(path, bin_name)
            if method == "GET":
                answer = browser.get(url)
                if who == "nobody":
                    assert answer.status_code == 303, (path, answer.text)
                    assert answer.headers["location"].startswith("/dashboard/login")
                else:
                    assert answer.status_code in (200, 404), (who, path, answer.text[:300])
                continue
            csrf = re.search(
                r'name="csrf" value="([0-9a-f]+)"', browser.get("/dashboard/login").text
            )
            assert csrf is not None
            answer = browser.post(url, data={"csrf": csrf.group(1), "arch": "x86_64"})
            if who == "nobody":
                assert answer.status_code == 403, (path, answer.text[:300])
                assert "Log in to do this" in answer.text
            elif _expected_refusal(who, rule.right, bin_name):
                assert answer.status_code == 403, (who, path, bin_name, answer.text[:300])
                assert f"lacks the right &#39;{rule.right.value}&#39;" in answer.text
            else:
                assert answer.status_code not in (401, 403), (who, path, answer.text[:300])


def test_the_roles_table_of_the_docs_is_the_code_s() -> None:
    """docs/security.md's table, row by row: a ✓ where the role has the right."""
    text = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    rows = {}
    for line in text.splitlines():
        found = re.match(r"\| `(\w+)` \|((?: [✓·] \|){4})", line)
        if found:
            rows[found.group(1)] = [cell.strip() == "✓" for cell in found.group(2).split("|")[:-1]]
    assert set(rows) == {right.value for right in Right}
    for right in Right:
        held = [Grant(role).allows(right) for role in Role]
        assert rows[right.value] == held, right

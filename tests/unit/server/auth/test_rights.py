"""Roles, rights and grants limited to bins (server/auth/rights.py): the table of
docs/security.md "Roles", decided without I/O."""

from __future__ import annotations

import pytest

from ansible_proxy.server.auth.rights import (
    ROLE_RIGHTS,
    Grant,
    Right,
    Role,
    parse_bins,
    parse_role,
    refusal,
)

# docs/security.md's roles table, row by row: the rights each role has (on every bin).
TABLE = {
    Right.READ: {"viewer", "publisher", "operator", "admin"},
    Right.PUBLISH: {"publisher", "operator", "admin"},
    Right.PIN: {"operator", "admin"},
    Right.PAUSE: {"operator", "admin"},
    Right.ROLLOUT: {"operator", "admin"},
    Right.DELETE: {"operator", "admin"},
    Right.NODES: {"operator", "admin"},
    Right.PROXIES: {"admin"},
    Right.PEOPLE: {"admin"},
    Right.TOKENS: {"admin"},
}


@pytest.mark.parametrize("right", list(Right))
def test_each_role_has_the_rights_of_the_table(right: Right) -> None:
    assert {role.value for role in Role if right in ROLE_RIGHTS[role]} == TABLE[right]


def test_a_grant_limited_to_bins_acts_only_on_them_and_on_nothing_fleet_wide() -> None:
    ci = Grant(Role.PUBLISHER, parse_bins("web, api-*", Role.PUBLISHER))
    assert ci.allows(Right.PUBLISH, "web")
    assert ci.allows(Right.PUBLISH, "api-gateway")
    assert not ci.allows(Right.PUBLISH, "api")
    assert not ci.allows(Right.PUBLISH, "website")  # a name, not a prefix
    assert not ci.allows(Right.PIN, "web")
    assert ci.allows(Right.READ)  # reading is never limited
    ops = Grant(Role.OPERATOR, ("web*",))
    assert ops.allows(Right.ROLLOUT, "web-eu")
    assert not ops.allows(Right.ROLLOUT, "db")
    assert not ops.allows(Right.NODES)  # approving a node changes every bin it runs
    assert Grant(Role.OPERATOR).allows(Right.NODES)


def test_a_refusal_names_the_missing_right_the_bin_and_the_roles_that_have_it() -> None:
    ci = Grant(Role.PUBLISHER, ("web",))
    message = refusal(ci, Right.PUBLISH, "api", "token ci")
    assert message is not None
    assert "token ci (publisher for web) lacks the right 'publish' on bin 'api'" in message
    assert "limited to bins" in message
    pin = refusal(ci, Right.PIN, "web", "token ci")
    assert pin is not None
    assert "'pin'" in pin
    assert "operator, admin" in pin
    assert refusal(ci, Right.PUBLISH, "web", "token ci") is None


def test_roles_and_bins_are_parsed_or_refused_with_one_clear_error() -> None:
    assert parse_role(" Operator ") is Role.OPERATOR
    with pytest.raises(ValueError, match="one of viewer, publisher, operator, admin"):
        parse_role("root")
    assert parse_bins("", Role.PUBLISHER) is None
    assert parse_bins("web,web,api", Role.OPERATOR) == ("web", "api")
    with pytest.raises(ValueError, match="invalid bin or glob"):
        parse_bins("web/../x", Role.PUBLISHER)
    for role in (Role.VIEWER, Role.ADMIN):
        with pytest.raises(ValueError, match="cannot be limited to bins"):
            parse_bins("web", role)

"""The write rule (auth/credentials.decide): the legacy rule before the node rule (issue
25.5), and one answer to whoever is not entitled to know a name's state (issue 25.7)."""

from __future__ import annotations

import pytest

from ansible_proxy.server.auth.credentials import NodeAuth, decide
from ansible_proxy.server.db.credentials import Binding, NameState, Principal
from ansible_proxy.server.problems import Forbidden, Unauthorized

OLD_HASH = "a" * 64
STATES = {
    "free": NameState(Binding.NONE),
    "enrolled": NameState(Binding.ENROLLED),
    "enrolled by a proxy": NameState(Binding.ENROLLED, proxy="edge"),
    "revoked": NameState(Binding.REVOKED, revoked_hash=OLD_HASH),
    "revoked, was a proxy's": NameState(Binding.REVOKED, revoked_proxy="edge"),
}
STRANGERS = {
    "no credential": (None, None),
    "an unknown token": (None, "b" * 64),
    "another node": (Principal("node", "web-02"), "c" * 64),
    "another proxy": (Principal("proxy", "other"), "d" * 64),
}


def _answer(problem: Unauthorized | Forbidden | None) -> tuple[int, str] | None:
    return None if problem is None else (problem.status, problem.message)


@pytest.mark.parametrize("stranger", list(STRANGERS))
def test_a_stranger_gets_one_answer_whatever_the_names_state(stranger: str) -> None:
    principal, hashed = STRANGERS[stranger]
    answers = {
        state: _answer(decide(NodeAuth.REQUIRED, "web-01", STATES[state], principal, False, hashed))
        for state in STATES
    }
    assert len(set(answers.values())) == 1, answers
    shown = next(iter(answers.values()))
    assert shown is not None
    assert "revoked" not in shown[1]
    assert "enrolled:" not in shown[1]


def test_only_the_revoked_credentials_holder_is_told_it_was_revoked() -> None:
    revoked = STATES["revoked"]
    told = decide(NodeAuth.REQUIRED, "web-01", revoked, None, False, OLD_HASH)
    assert told is not None
    assert "revoked" in told.message
    was_proxys = STATES["revoked, was a proxy's"]
    edge = Principal("proxy", "edge")
    proxy = decide(NodeAuth.REQUIRED, "web-01", was_proxys, edge, False, "e" * 64)
    assert proxy is not None
    assert "revoked" in proxy.message


def test_the_legacy_rule_comes_before_the_node_rule_in_migrate_mode() -> None:
    # A node whose token is also the agent token (enrolled by an older server) must not
    # shut off the nodes that still write with the agent token.
    squatter = Principal("node", "squatter")
    free = STATES["free"]
    assert decide(NodeAuth.MIGRATE, "legacy-01", free, squatter, True) is None
    refused = decide(NodeAuth.MIGRATE, "legacy-01", free, squatter, False)
    assert isinstance(refused, Forbidden)
    # The legacy rule never reaches an enrolled or revoked name.
    for state in ("enrolled", "revoked"):
        assert decide(NodeAuth.MIGRATE, "web-01", STATES[state], None, True) is not None


def test_a_node_and_its_proxy_write_about_their_own_name() -> None:
    mine = Principal("node", "web-01")
    assert decide(NodeAuth.REQUIRED, "web-01", STATES["enrolled"], mine, False) is None
    proxy = Principal("proxy", "edge")
    assert decide(NodeAuth.REQUIRED, "web-01", STATES["enrolled by a proxy"], proxy, False) is None

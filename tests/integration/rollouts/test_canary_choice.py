"""Who may be a rollout's canary (issue 25.4): the order is keyed by a secret of the
server, a node counts only once it showed it runs a release of the bin, and operators
choose canaries by name or by labels only an admin sets."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from typing import Any

from tests.integration.rollouts.conftest import NODES, MakeFleet
from tests.support.fleet_hosts import ARCH, Fleet, program
from tests.support.server import BinManager

STAGED = ("--canary", "1", "--waves", "100%", "--bake", "3600", "--max-failures", "1")


def _enrol_as_a_node(server: BinManager, name: str) -> str:
    """What any host with the fleet's enrolment token can do: enrol `name`; its token."""
    token = secrets.token_urlsafe(32)
    body = {"cpuArch": ARCH, "osRelease": "Debian 12", "nodeName": name,
            "binProxyVersion": "1", "nodeToken": token}  # fmt: skip
    with server.client() as http:
        answer = http.post(
            f"{server.api}/enrol",
            json=body,
            headers={"Authorization": f"Bearer {server.enrolment_token}"},
        )
    assert answer.status_code == 201, answer.text
    return token


def _report(server: BinManager, name: str, token: str, bin_name: str, sha: str) -> None:
    """POST /bins/{bin}: `name` says it runs `sha` (nothing checks that it does)."""
    report = {"nodeName": name, "binName": bin_name, "sha256": sha}
    with server.client() as http:
        answer = http.post(
            f"{server.api}/bins/{bin_name}",
            json=report,
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text


def _public_rank(name: str) -> bytes:
    """The order before issue 25.4, which anyone could compute: sha256(bin \\0 name)."""
    return hashlib.sha256(f"web\0{name}".encode()).digest()


def _secret_rank(server: BinManager, names: list[str]) -> list[str]:
    """`names` in the order the server keys with its secret (read from its database: the
    test's view, never served)."""
    with sqlite3.connect(server.data_dir / "bin-manager.sqlite3") as db:
        row = db.execute("SELECT value FROM server_secrets WHERE name='rollout-order'").fetchone()
    key = str(row[0]).encode()

    def rank(name: str) -> bytes:
        return hmac.new(key, f"web\0{name}".encode(), hashlib.sha256).digest()

    return sorted(names, key=rank)


def _members(fleet: Fleet) -> list[str]:
    return sorted(name for wave in fleet.waves() for name in wave)


def test_a_node_choosing_the_name_that_sorts_first_does_not_become_the_canary(
    make_fleet: MakeFleet,
) -> None:
    fleet = make_fleet()
    v1 = fleet.install(program("1"))
    fleet.set_policy(*STAGED)

    # The attack: try names until one sorts before every node of the fleet by the public
    # hash (491 tries found one in the attack round), enrol it, claim to run v1.
    ahead = [
        name
        for name in (f"evil-{i}" for i in range(491))
        if all(_public_rank(name) < _public_rank(node) for node in NODES)
    ]
    assert ahead, "no name sorts first by the public hash"
    # Of those, one that the server's own order does not put first either (at most one
    # name is first there): the public hash no longer decides anything.
    attacker = next(name for name in ahead if _secret_rank(fleet.server, [*NODES, name])[0] != name)
    token = _enrol_as_a_node(fleet.server, attacker)
    _report(fleet.server, attacker, token, "web", v1)

    v2 = fleet.server.publish("web", program("2"))
    waves = fleet.waves()
    assert attacker in _members(fleet)  # it showed v1 running: a member, not the canary
    assert waves[0] == _secret_rank(fleet.server, [*NODES, attacker])[:1]
    assert waves[0] != [attacker]
    assert fleet.told(attacker) == v1
    assert fleet.told(waves[0][0]) == v2


def test_a_node_that_never_ran_a_release_of_the_bin_is_no_member(make_fleet: MakeFleet) -> None:
    fleet = make_fleet(nodes=("host-1", "host-2"))
    v1 = fleet.install(program("1"))
    other = fleet.server.publish("db", b"db v1")
    joined: dict[str, Any] = {
        "junk-01": "e" * 64,  # content that is no release of web
        "other-01": other,  # a release, of another bin
        "quiet-01": None,  # enrolled and calling, reports nothing
    }
    for name, sha in joined.items():
        token = _enrol_as_a_node(fleet.server, name)
        if sha is not None:
            _report(fleet.server, name, token, "web", sha)
    fleet.set_policy(*STAGED)

    fleet.server.publish("web", program("2"))
    assert _members(fleet) == ["host-1", "host-2"]
    for name in joined:
        assert fleet.told(name) == v1  # told the fleet's release, as every non-member

    # The same node, once it shows it runs a release of web, counts from the next one.
    token = _enrol_as_a_node(fleet.server, "late-01")
    _report(fleet.server, "late-01", token, "web", v1)
    fleet.server.publish("web", program("3"))
    assert _members(fleet) == ["host-1", "host-2", "late-01"]


def test_canaries_chosen_by_name_get_the_release_first_and_the_fleet_follows(
    make_fleet: MakeFleet,
) -> None:
    fleet = make_fleet()
    v1 = fleet.install(program("1"))
    chosen = ["host-4", "host-1"]
    fleet.set_policy("--canary", "1", "--waves", "100%", "--bake", "2", "--max-failures", "1",
                     "--canary-nodes", ",".join(chosen))  # fmt: skip
    status = fleet.cli("rollout", "status", "web").stdout
    assert "--canary-nodes host-4,host-1" in status

    v2 = fleet.server.publish("web", program("2"))
    waves = fleet.waves()
    assert sorted(waves[0]) == sorted(chosen)
    assert sorted(waves[1]) == sorted(set(NODES) - set(chosen))
    assert {node: fleet.told(node) for node in NODES} == {
        node: v2 if node in chosen else v1 for node in NODES
    }
    fleet.tick()
    assert fleet.shas() == {node: v2 if node in chosen else v1 for node in NODES}
    fleet.converge(lambda rollout: rollout["state"] == "completed", "the rollout completes")
    assert set(fleet.shas().values()) == {v2}

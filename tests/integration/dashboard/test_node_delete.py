"""Deleting a decommissioned node (issue 26.3): from the dashboard's node page (admin login,
CSRF) and with `bin-manager nodes delete`, against real agents.

A host taken out of service but still the canary of a rollout kept the rollout waiting for
it. Deleted, it leaves the fleet, its reports and the rollout (which an operator's promote
then takes past the emptied canary wave); its
credential is revoked, so its agent ticking again is refused and the host installed again
only asks as a new pending enrolment. With --keep-credential its next tick registers it.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page

from tests.integration.dashboard.conftest import login, shot
from tests.support.fleet_hosts import FAST_CHECKS, Fleet, program
from tests.support.server import BinManagerFactory
from tests.support.supervisor import Supervisord

NODES = ("web-1", "web-2", "web-3")


def _node(fleet: Fleet, name: str) -> httpx.Response:
    return fleet.server.admin_get(f"/nodes/{name}")


def _running(fleet: Fleet) -> dict[str, str]:
    """node → sha of the bin's nodes listing (who the bin's counts include)."""
    rows = fleet.server.admin_get(f"/bins/{fleet.bin_name}/nodes").json()["data"]
    return {row["nodeName"]: row["sha256"] for row in rows}


def test_a_decommissioned_canary_deleted_from_the_dashboard_lets_the_rollout_go_on(
    bin_manager_factory: BinManagerFactory,
    supervisord: Supervisord,
    page: Page,
    tmp_path: Path,
) -> None:
    server = bin_manager_factory(node_auth="required", extra_env=FAST_CHECKS)
    fleet = Fleet(tmp_path / "hosts", server, supervisord, NODES)
    v1 = fleet.install(program("1"))
    # web-3 is decommissioned: its service stopped, its agent never runs again.
    supervisord.call("stopProcess", fleet["web-3"].program)
    fleet.set_policy(
        "--canary", "1", "--canary-nodes", "web-3", "--waves", "100%", "--bake", "1",
        "--max-failures", "1",
    )  # fmt: skip
    v2 = server.publish("web", program("2"))
    assert fleet.waves()[0] == ["web-3"]
    fleet.tick(["web-1", "web-2"])
    assert fleet.told("web-1") == v1  # the rollout waits for its canary
    assert _running(fleet) == dict.fromkeys(NODES, v1)

    login(page, server)
    forged = page.request.post(  # the browser's cookies go along: only the CSRF token is wrong
        f"{server.url}/dashboard/nodes/web-3/delete", form={"csrf": "0" * 64}
    )
    assert forged.status == 403
    assert _node(fleet, "web-3").status_code == 200
    page.goto(f"{server.url}/dashboard/nodes/web-3")
    page.click("#delete-node summary")
    shot(page, tmp_path, "delete-form")
    page.click("#delete")
    page.wait_for_url("**/dashboard/?done=node-deleted")
    shot(page, tmp_path, "deleted")
    assert "Node deleted from the fleet" in page.get_by_role("status").inner_text()
    assert page.locator("#nodes a", has_text="web-3").count() == 0
    assert page.locator("#nodes a", has_text="web-1").count() == 1
    page.goto(f"{server.url}/dashboard/activity")
    deleted = page.locator("#activity tr.node-delete")
    assert deleted.count() == 1
    assert "web-3 deleted from the fleet: left 1 rollout(s), credential revoked" in (
        deleted.inner_text()
    )

    assert _node(fleet, "web-3").status_code == 404
    assert _running(fleet) == {"web-1": v1, "web-2": v1}
    assert all("web-3" not in wave for wave in fleet.waves())
    assert server.credential("web-3")["status"] == "revoked"
    gone = fleet.hosts.pop("web-3")  # the fleet the test ticks is the one left
    # Its canary wave is empty now: it proves nothing, so the operator promotes past it.
    assert fleet.rollout()["waves"][0]["nodes"] == []
    fleet.cli("rollout", "promote", "web")
    rollout = fleet.converge(lambda r: r["state"] == "completed", "the rollout goes on")
    assert rollout["release"] == v2
    assert fleet["web-1"].sha() == fleet["web-2"].sha() == v2

    # Its agent ticking again is refused for good and does not bring the node back ...
    comeback = gone.run()
    assert comeback.returncode == 2, gone.debug(comeback)
    assert "revoked" in comeback.stderr
    assert _node(fleet, "web-3").status_code == 404
    # ... and the host installed again (a new token) asks as a new pending enrolment.
    gone.node_token_file.unlink()
    (gone.store_dir / ".state.json").unlink()
    again = gone.run()
    assert again.returncode != 0, gone.debug(again)
    pending = fleet.cli("nodes", "list", "--pending").stdout
    assert re.search(r"^web-3 +[0-9a-f]{12} +.* revoked before$", pending, re.M), pending
    assert _node(fleet, "web-3").status_code == 404  # not in the fleet until approved


def test_nodes_delete_keeping_the_credential_lets_the_node_register_again(
    bin_manager_factory: BinManagerFactory, supervisord: Supervisord, tmp_path: Path
) -> None:
    server = bin_manager_factory(node_auth="required", extra_env=FAST_CHECKS)
    fleet = Fleet(tmp_path / "hosts", server, supervisord, NODES[:2])
    v1 = fleet.install(program("1"))
    first_seen = _node(fleet, "web-2").json()["data"]["firstSeen"]

    unknown = fleet.cli("nodes", "delete", "web-9", check=False)
    assert unknown.returncode == 2
    assert "unknown node 'web-9'" in unknown.stderr
    with httpx.Client() as http:
        refused = http.delete(f"{server.api}/admin/nodes/web-2")  # no admin token
    assert refused.status_code == 401
    assert _node(fleet, "web-2").status_code == 200

    done = fleet.cli("nodes", "delete", "web-2", "--keep-credential")
    assert done.stdout == (
        "web-2: deleted from the fleet and 0 rollout(s); its credential is kept: "
        "its next tick registers it again\n"
    )
    assert _node(fleet, "web-2").status_code == 404
    assert _running(fleet) == {"web-1": v1}
    assert server.credential("web-2")["status"] == "enrolled"
    events = server.admin_get("/events").json()["data"]
    assert [e["detail"] for e in events if e["kind"] == "node-delete"] == [
        "web-2 deleted from the fleet: left 0 rollout(s), credential kept"
    ]

    fleet.tick(["web-2"])  # its next tick registers it again, as a node seen anew
    back = _node(fleet, "web-2")
    assert back.status_code == 200
    assert back.json()["data"]["firstSeen"] >= first_seen
    v2 = server.publish("web", program("2"))
    fleet.tick()
    assert _running(fleet) == {"web-1": v2, "web-2": v2}

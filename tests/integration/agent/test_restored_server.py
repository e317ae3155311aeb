"""The operator guide's backup and restore of the bin-manager (docs/operator-guide.md §11)
with real nodes: a node that enrolled after the backup is unknown to the restored server
(401 to its token), says so once and enrols again — at once with its enrolment token,
else as a request waiting for approval — while the nodes enrolled before go on as they were.

The backup and the restore are the guide's commands (sqlite3 .backup, the artifacts copied
after the database, tar), on a real bin-manager's data directory with node credentials
required.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.integration.server.test_cli import cli
from tests.support.agent import Agent, program
from tests.support.server import BinManager, BinManagerFactory
from tests.support.supervisor import Supervisord

UNKNOWN = "the bin-manager does not know this node's token"


def sh(script: str, cwd: Path) -> None:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def back_up(server: BinManager, backups: Path) -> None:
    """§11's backup, made while the server runs: the database, then the artifacts."""
    backups.mkdir()
    data = server.data_dir
    sh(
        "mkdir bin-manager\n"
        f'sqlite3 {data}/bin-manager.sqlite3 ".backup bin-manager/bin-manager.sqlite3"\n'
        f"cp -a {data}/artifacts bin-manager/\n"
        "tar -czf bin-manager.tar.gz bin-manager\n"
        "rm -rf bin-manager\n",
        backups,
    )


def restore(server: BinManager, backups: Path) -> None:
    """§11's restore: stopped, what was there kept aside, the backup unpacked, started."""
    server.stop()
    data = server.data_dir
    sh(
        f"mv {data} {data}.old\n"
        f"tar -xzf {backups}/bin-manager.tar.gz -C {data.parent}\n"
        f"mv {data.parent}/bin-manager {data}\n",
        backups,
    )
    server.start()


def node(tmp_path: Path, name: str, server: BinManager, supervisord: Supervisord,
         enrolment: bool) -> Agent:  # fmt: skip
    made = Agent(
        tmp_path / name,
        server.api,
        supervisord.socket_url,
        server.enrolment_token if enrolment else None,
    )
    made.env["NODE_NAME"] = name
    made.write_manifest()
    return made


def warned(agent: Agent, stderr: str) -> int:
    """How many times the agent said its token is unknown: log lines (and on stderr)."""
    lines = [line for line in agent.log().splitlines() if UNKNOWN in line]
    assert stderr.count(UNKNOWN) <= len(lines)
    return len(lines)


def test_nodes_enrolled_after_a_backup_enrol_again_after_the_restore(
    tmp_path: Path, bin_manager_factory: BinManagerFactory, supervisord: Supervisord
) -> None:
    server = bin_manager_factory(node_auth="required")
    sha = server.publish("hello", program("1"))
    before = node(tmp_path, "before", server, supervisord, enrolment=True)
    before.write_manifest("hello")
    supervisord.add_program("hello", before.binary("hello"))
    assert before.run().returncode == 0, before.log()
    back_up(server, tmp_path / "backups")

    # After the backup: one node with the enrolment token, one an admin approved.
    after = node(tmp_path, "after", server, supervisord, enrolment=True)
    assert after.run().returncode == 0, after.log()
    approved = node(tmp_path, "approved", server, supervisord, enrolment=False)
    assert approved.run().returncode == 75, approved.log()
    fingerprint = server.credential("approved")["pending"]["fingerprint"]
    assert cli(server, "nodes", "approve", "approved", "--fingerprint", fingerprint).returncode == 0
    assert approved.run().returncode == 0, approved.log()
    tokens = {a: a.node_token_file.read_text() for a in (after, approved)}

    restore(server, tmp_path / "backups")
    assert server.credential("after")["status"] == "none"  # the restored database's view

    # The node with its enrolment token: said once, loudly, and enrolled again at once.
    again = after.run()
    assert again.returncode == 0, after.debug(again)
    assert warned(after, again.stderr) == 1, after.log()
    assert f"ansible-proxy: warning: {UNKNOWN}" in again.stderr  # cron mails it, once
    assert server.credential("after")["status"] == "enrolled"
    assert server.admin_get("/nodes/after").status_code == 200
    quiet = after.run()
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert warned(after, quiet.stderr) == 1

    # The node without one: said once, then a request an admin sees among the pending.
    waiting = approved.run()
    assert waiting.returncode == 75, approved.debug(waiting)
    assert warned(approved, waiting.stderr) == 1
    pending = server.credential("approved")["pending"]
    assert pending["fingerprint"] == fingerprint  # the same token: compare, then approve
    listed = server.admin_get("/credentials/pending").json()["data"]
    assert [p["nodeName"] for p in listed] == ["approved"]
    assert approved.run().returncode == 75
    assert warned(approved, "") == 1
    assert cli(server, "nodes", "approve", "approved", "--fingerprint", fingerprint).returncode == 0
    assert approved.run().returncode == 0, approved.log()

    # Nothing changed for the node enrolled before the backup; no token was made anew.
    assert before.run().returncode == 0, before.log()
    assert UNKNOWN not in before.log()
    assert before.installed_sha("hello") == sha
    assert {a: a.node_token_file.read_text() for a in (after, approved)} == tokens
    shutil.rmtree(server.data_dir.with_name(server.data_dir.name + ".old"))

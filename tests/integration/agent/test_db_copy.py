"""`bin-manager db copy` from SQLite to a real PostgreSQL (issue 31.2): after the move, a
host that checks signatures accepts the next release (the signature sequences came
along) and an enrolled node keeps working with its own credential, not enrolling again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.agent.test_signed_releases import signing_host
from tests.support.agent import Agent, program
from tests.support.server import BinManagerFactory
from tests.support.supervisor import Supervisord


@pytest.mark.postgres
def test_after_a_copy_to_postgresql_signed_hosts_accept_the_next_release(
    tmp_path: Path,
    bin_manager_factory: BinManagerFactory,
    supervisord: Supervisord,
    postgres_url: str,
) -> None:
    manager = bin_manager_factory(node_auth="required")
    agent = Agent(tmp_path / "host", manager.api, supervisord.socket_url, manager.enrolment_token)
    publishers, (alice,) = signing_host(tmp_path, manager, supervisord, agent, "alice")
    publishers.publish("hello", program("1"), alice)
    assert agent.run().returncode == 0, agent.log()
    sha2 = publishers.publish("hello", program("2"), alice)
    assert agent.run().returncode == 0, agent.log()
    assert agent.installed_sha("hello") == sha2
    node_token = agent.node_token_file.read_text()

    manager.stop()
    sqlite = f"sqlite+pysqlite:///{manager.data_dir / 'bin-manager.sqlite3'}"
    url_file = tmp_path / "database-url"
    url_file.write_text(postgres_url + "\n")
    copied = manager.cli("db", "copy", "--from", sqlite, "--to-file", str(url_file))
    assert copied.returncode == 0, copied.stderr
    assert "  node_credentials: 1\n" in copied.stdout
    assert copied.stdout.endswith("now start bin-manager serve with the new database\n")
    again = manager.cli("db", "copy", "--from", sqlite, "--to-file", str(url_file))
    assert again.returncode == 2
    assert again.stderr.startswith("bin-manager: error: db copy: the target database is not empty")

    manager.service.argv += ["--database-url", postgres_url]
    manager.start()
    (manager.data_dir / "bin-manager.sqlite3").rename(tmp_path / "old.sqlite3")  # not read
    sha3 = publishers.publish("hello", program("3"), alice)
    third = agent.run()
    assert third.returncode == 0, agent.debug(third)
    assert agent.installed_sha("hello") == sha3
    assert agent.node_token_file.read_text() == node_token  # not enrolled again
    nodes = manager.admin_get("/nodes/host-001")
    assert nodes.status_code == 200, nodes.text

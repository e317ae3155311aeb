"""Agent integration fixtures: a bin-manager, a supervisord, and a host layout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import agent as agent_support
from tests.support.agent import Agent
from tests.support.py39 import bullseye_agent
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


@pytest.fixture
def agent(tmp_path: Path, bin_manager: BinManager, supervisord: Supervisord) -> Agent:
    """A host managed through the local supervisord socket, talking to `bin_manager`."""
    return Agent(
        tmp_path / "host", bin_manager.api, supervisord.socket_url, bin_manager.enrolment_token
    )


@pytest.fixture(scope="session", autouse=True)
def agent_python(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """With --agent-python39: every agent command runs under Debian 11's Python 3.9."""
    if not request.config.getoption("agent_python39"):
        yield
        return
    # /tmp holds the tests' host layouts and supervisord's socket (a short path: sun_path)
    with bullseye_agent(tmp_path_factory.mktemp("bullseye"), Path("/tmp")) as prefix:
        agent_support.AGENT_COMMAND[:] = prefix
        try:
            yield
        finally:
            agent_support.AGENT_COMMAND[:] = [str(agent_support.AGENT)]

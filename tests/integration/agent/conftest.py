"""Agent integration fixtures: a bin-manager, a supervisord, and a host layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.agent import Agent
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


@pytest.fixture
def agent(tmp_path: Path, bin_manager: BinManager, supervisord: Supervisord) -> Agent:
    """A host managed through the local supervisord socket, talking to `bin_manager`."""
    return Agent(tmp_path / "host", bin_manager.api, supervisord.socket_url)

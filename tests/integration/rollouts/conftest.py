"""Staged-rollout fixtures: a bin-manager with fast rollout checks and a fleet of real hosts.

`make_fleet(...)` starts a bin-manager (node auth required: every host reports with its
own credential) and returns a `Fleet` of five hosts on the test's one supervisord.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.fleet_hosts import FAST_CHECKS, Fleet
from tests.support.server import BinManagerFactory
from tests.support.supervisor import Supervisord

NODES = ("host-1", "host-2", "host-3", "host-4", "host-5")
MakeFleet = Callable[..., Fleet]


@pytest.fixture
def make_fleet(
    tmp_path: Path, bin_manager_factory: BinManagerFactory, supervisord: Supervisord
) -> MakeFleet:
    """make_fleet(nodes=NODES, labels={node: "k=v"}, extra_env={...}, **BinManager kwargs)."""

    def make(
        nodes: tuple[str, ...] = NODES,
        labels: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
        **server: Any,
    ) -> Fleet:
        manager = bin_manager_factory(
            node_auth="required", extra_env={**FAST_CHECKS, **(extra_env or {})}, **server
        )
        return Fleet(tmp_path / "hosts", manager, supervisord, nodes, labels=labels)

    return make

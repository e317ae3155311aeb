"""Scale-out fixtures: bin-manager replicas on one PostgreSQL, nginx in front of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.nginx import NginxProxy
from tests.support.server import BinManager

ACCEL = {"BIN_MANAGER_X_ACCEL_REDIRECT": "/_artifacts/"}
Replicas = Callable[..., list[BinManager]]


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Replicas]:
    """replicas(database_url, count[, env]): servers sharing one database and one data dir."""
    started: list[BinManager] = []

    def make(database_url: str, count: int, env: dict[str, str] | None = None) -> list[BinManager]:
        extra_env = {**ACCEL, **(env or {})}
        first = BinManager(tmp_path / "replica-1", database_url=database_url, extra_env=extra_env)
        started.append(first)
        first.start()
        for index in range(2, count + 1):
            home = tmp_path / f"replica-{index}"
            home.mkdir()
            (home / "data").symlink_to(first.data_dir)
            replica = BinManager(
                home, database_url=database_url, extra_env=extra_env, admin_token=first.admin_token
            )
            started.append(replica)
            replica.start()
        return started[-count:]

    yield make
    for replica in started:
        replica.stop()


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator[Callable[[list[BinManager]], NginxProxy]]:
    """nginx_factory(replicas): nginx balancing over them, X-Accel from their artifacts."""
    started: list[NginxProxy] = []

    def make(servers: list[BinManager]) -> NginxProxy:
        proxy = NginxProxy(
            tmp_path / f"nginx-{len(started) + 1}",
            [server.port for server in servers],
            servers[0].data_dir / "artifacts",
        )
        started.append(proxy)
        return proxy.start()

    yield make
    for proxy in started:
        proxy.stop()

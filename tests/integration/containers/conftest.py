"""Container fixtures: the worker's private podman store, a supervisord that uses it, a
real registry (tests/support/containers.py), and an image host (tests/support/image_host.py).
After every test here no container and no podman process of the store is left."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.containers import (
    ContainerEnv,
    container_env,
    container_store,
    container_supervisord,
    registry,
)
from tests.support.image_host import archives, host, host_pinned, no_container_left

__all__ = [
    "archives",
    "container_env",
    "container_store",
    "container_supervisord",
    "host",
    "host_pinned",
    "registry",
]


@pytest.fixture(autouse=True)
def nothing_left(container_env: ContainerEnv) -> Iterator[None]:
    """Checked after supervisord has stopped (its teardown runs first)."""
    yield
    no_container_left(container_env)

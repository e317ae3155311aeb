"""Container fixtures: the worker's private podman store, a supervisord that uses it, and a
real registry (all from tests/support/containers.py)."""

from __future__ import annotations

from tests.support.containers import (
    container_env,
    container_store,
    container_supervisord,
    registry,
)

__all__ = ["container_env", "container_store", "container_supervisord", "registry"]

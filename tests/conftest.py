"""Fixtures shared by every test live in tests/support/, loaded here as plugins.

`make test` runs the suite with pytest-xdist. Tests that share something a machine has
only one of run on one worker, one after the other: `pytest_xdist_make_scheduler` below
gives each of them its group as its scope (every other test is a scope of its own, so it
goes to whichever worker is free). The groups are kept here, by path, so that no test
file has to remember them. (Not `--dist loadgroup` with `xdist_group` marks: with
pytest 9.2 and pytest-xdist 3.8 the marks no longer reach the scheduler.)

The `slow` mark, also by path: every test that starts real processes (all of
tests/integration/, and any test marked `postgres`), so that `pytest -m "not slow"` is
the quick set `make test-quick` runs (docs/testing.md).
"""

from __future__ import annotations

from typing import Any

import pytest

pytest_plugins = [
    "tests.support.server",
    "tests.support.inprocess",
    "tests.support.supervisor",
    "tests.support.prometheus",
    "tests.support.cluster",
    "tests.support.slow_link",
]

# path prefix → group: the cluster labs put a bridge with 198.51.100.1/24 in the root
# network namespace (two at once would share the subnet); the guide test's debootstrapped
# Debian and its caches are one per machine; the slow-link tests' two addresses (.250 and
# .251 of 198.51.100.0/24) are one per machine too.
GROUPS = {
    "tests/integration/cluster/": "cluster-network",
    "tests/integration/packaging/test_ansible_role.py": "cluster-network",
    "tests/integration/guide/": "debian-root",
    "tests/integration/agent/test_slow_link.py": "slow-link",
}


def pytest_addoption(parser: Any) -> None:
    parser.addoption(
        "--agent-python39",
        action="store_true",
        help="run the agent's tests with the one-file agent under Debian 11's Python 3.9 "
        "(tests/support/py39.py)",
    )


# Tests under these paths start real services (tests/support/): marked `slow`.
SLOW = ("tests/integration/",)


def is_slow(nodeid: str, marks: set[str]) -> bool:
    """Does this test start real processes: by its path, or a PostgreSQL by its mark?"""
    return nodeid.startswith(SLOW) or "postgres" in marks


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Mark the slow tests (above). --agent-python39 runs the agent's tests in a chroot: not
    those about this machine's own mounts (tmpfs, read-only remounts) or cron, which the
    chroot does not share; they run in the main pass."""
    for item in items:
        if is_slow(item.nodeid, {mark.name for mark in item.iter_markers()}):
            item.add_marker(pytest.mark.slow)
    if not config.getoption("agent_python39"):
        return
    kept = [item for item in items if item.get_closest_marker("host_only") is None]
    left = [item for item in items if item.get_closest_marker("host_only") is not None]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def group_of(nodeid: str) -> str:
    """The scheduling unit of a test: its group, or the test itself."""
    for prefix, group in GROUPS.items():
        if nodeid.startswith(prefix):
            return group
    return nodeid


def pytest_xdist_make_scheduler(config: Any, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return GroupScheduling(config, log)

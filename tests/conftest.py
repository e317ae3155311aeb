"""Fixtures shared by every test live in tests/support/, loaded here as plugins."""

pytest_plugins = [
    "tests.support.server",
    "tests.support.supervisor",
    "tests.support.prometheus",
    "tests.support.cluster",
]

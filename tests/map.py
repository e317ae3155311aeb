"""Which tests cover each source folder: the one table `make test-for PATH` runs from
(scripts/test_for.py) and docs/testing.md shows. tests/unit/test_map.py checks that every
source folder has its row and every test folder is named by one.

Tests do not mirror src/ path for path: the unit tests do, mostly (tests/unit/server/
hotpath/ for src/ansible_proxy/server/hotpath/), but a route test or an integration test
drives several folders at once, as a user would. Each row lists the quick tests first
(tests/unit/, tests/routes/), then the slow ones that start real processes
(tests/integration/; `make test-for --quick` leaves them out by their `slow` mark).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = "src/ansible_proxy"

# source folder → the test folders (or files) that cover it
COVERS: dict[str, tuple[str, ...]] = {
    SRC: (  # errors, names, protocol, signatures; cli.py and extras.py: the console scripts
        "tests/unit/test_architecture.py",
        "tests/unit/test_commands.py",
        "tests/unit/test_errors.py",
        "tests/unit/test_names.py",
        "tests/unit/test_protocol.py",
        "tests/unit/test_signatures.py",
        "tests/integration/agent",
        "tests/integration/packaging",
    ),
    f"{SRC}/agent": (
        "tests/unit/agent",
        "tests/integration/agent",
        "tests/integration/fleet",
        "tests/integration/packaging",  # install-cron, install-files
    ),
    f"{SRC}/agent/adapters": (
        "tests/unit/agent/adapters",
        "tests/integration/agent",
        "tests/integration/containers",
    ),
    f"{SRC}/agent/inspector": ("tests/unit/agent/inspector", "tests/integration/inspector"),
    f"{SRC}/client": (
        "tests/unit/client",
        "tests/integration/agent",
        "tests/integration/inspector",
        "tests/integration/cluster",
    ),
    f"{SRC}/cluster": ("tests/unit/cluster", "tests/integration/cluster"),
    f"{SRC}/server": ("tests/unit/server", "tests/routes", "tests/integration/server"),
    f"{SRC}/server/api": (
        "tests/unit/server",
        "tests/routes",
        "tests/integration/server",
        "tests/integration/dashboard/test_api_docs.py",
    ),
    f"{SRC}/server/audit": ("tests/routes", "tests/integration/server"),
    f"{SRC}/server/auth": ("tests/unit/server/auth", "tests/routes", "tests/integration/server"),
    f"{SRC}/server/cli": ("tests/unit/server/cli", "tests/integration/server"),
    f"{SRC}/server/dashboard": ("tests/unit/server/dashboard", "tests/integration/dashboard"),
    f"{SRC}/server/db": ("tests/unit/server", "tests/routes", "tests/integration/server"),
    f"{SRC}/server/db/migrations": (
        "tests/routes/test_migrations.py",
        "tests/integration/server/test_signatures.py",
    ),
    f"{SRC}/server/db/migrations/versions": (
        "tests/routes/test_migrations.py",
        "tests/integration/server/test_signatures.py",
    ),
    f"{SRC}/server/hotpath": (
        "tests/unit/server/hotpath",
        "tests/routes",
        "tests/integration/server",
        "tests/integration/fleet",
    ),
    f"{SRC}/server/limits": (
        "tests/unit/server/limits",
        "tests/routes",
        "tests/integration/server",
    ),
    f"{SRC}/server/rollouts": ("tests/unit/server/rollouts", "tests/integration/rollouts"),
    f"{SRC}/server/services": (
        "tests/unit/server/services",
        "tests/routes",
        "tests/integration/server",
    ),
    f"{SRC}/server/storage": (
        "tests/unit/server/storage",
        "tests/routes",
        "tests/integration/server",
    ),
    f"{SRC}/server/webhooks": (
        "tests/unit/server/webhooks",
        "tests/routes/test_webhook_nodes.py",
        "tests/integration/server",
        "tests/integration/rollouts",
    ),
    f"{SRC}/server/writepath": (
        "tests/unit/server/writepath",
        "tests/routes",
        "tests/integration/fleet",
    ),
}

# Tests of something else than one source folder (`make test` runs them too).
OTHERS: dict[str, str] = {
    "tests/integration/demo": "`make demo`: the whole product, as a newcomer first sees it",
    "tests/integration/guide": "docs/operator-guide.md: every command in it, in order",
    "tests/unit/test_map.py": "this table",
}


def source_folders() -> list[str]:
    """Every folder of src/ansible_proxy holding Python modules, as a path from the root."""
    return sorted(
        str(folder.relative_to(ROOT))
        for folder in {path.parent for path in (ROOT / SRC).rglob("*.py")}
        if "__pycache__" not in folder.parts
    )


def row_of(path: str) -> str:
    """The row for `path` (a file or folder under src/ansible_proxy): its own folder's, or
    the nearest folder above it that has one. ValueError when it is not under src/."""
    given = Path(path)
    full = given if given.is_absolute() else ROOT / given
    try:
        relative = full.resolve().relative_to(ROOT)
    except ValueError:
        raise ValueError(f"{path}: not in this repository") from None
    if not full.exists():
        raise ValueError(f"{path}: no such file or folder")
    for folder in (relative, *relative.parents):
        if str(folder) in COVERS:
            return str(folder)
    raise ValueError(f"{path}: not under {SRC}/ (tests/map.py maps source folders)")


def covering(paths: list[str]) -> list[str]:
    """The test paths covering every one of `paths`, each once, in the table's order."""
    found: list[str] = []
    for path in paths:
        for test in COVERS[row_of(path)]:
            if test not in found:
                found.append(test)
    return found

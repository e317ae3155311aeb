"""The optional parts of the distribution: the bin-manager and the cluster proxy.

`pip install ansible-proxy` brings the agent and the inspector only (what every host
runs, on Python 3.9 and newer); `ansible-proxy[server]` adds the bin-manager and
`ansible-proxy[cluster]` the cluster proxy. A command whose part is not installed says
in one line what to install, instead of a traceback.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

from ansible_proxy.errors import EXIT_CONFIG

# The top-level modules each extra brings (pip name → import name where they differ).
SERVER_MODULES = (
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "pydantic",
    "pydantic_settings",
    "prometheus_client",
    "jinja2",
    "multipart",
    "httpx",  # the admin CLI
)
CLUSTER_MODULES = ("ansible", "ansible_runner", "jinja2")


def missing(modules: Sequence[str]) -> list[str]:
    """Which of `modules` cannot be imported here (found on the path, not imported)."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def require(command: str, extra: str, modules: Sequence[str], python: tuple[int, int]) -> None:
    """Exit 2 with one line on stderr when `command`'s extra cannot run here."""
    if sys.version_info < python:
        wanted = ".".join(map(str, python))
        have = ".".join(map(str, sys.version_info[:2]))
        _refuse(f"{command} needs Python {wanted} or newer (this is {have})")
    absent = missing(modules)
    if absent:
        _refuse(
            f"{command} needs the {extra} part, not installed here "
            f"(missing: {', '.join(absent)}): pip install 'ansible-proxy[{extra}]'"
        )


def _refuse(line: str) -> None:
    print(f"ansible-proxy: error: {line}", file=sys.stderr)
    sys.exit(EXIT_CONFIG)


def bin_manager() -> None:
    """The `bin-manager` console script: the server's CLI, when the server part is here."""
    require("bin-manager", "server", SERVER_MODULES, (3, 11))
    from ansible_proxy.server.cli.main import main  # start-up: only once it can import

    main()

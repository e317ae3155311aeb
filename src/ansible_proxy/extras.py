"""The optional parts of the distribution: the bin-manager and the cluster proxy.

`pip install ansible-proxy` brings the agent and the inspector only (what every host
runs, on Python 3.9 and newer); `ansible-proxy[server]` adds the bin-manager and
`ansible-proxy[cluster]` the cluster proxy. A command whose part is not installed says
in one line what to install, instead of a traceback: the pip command, or for an install
made by pipx the pipx command that adds the part to that very install.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

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
            f"(missing: {', '.join(absent)}): {how_to_add(extra)}"
        )


def how_to_add(extra: str) -> str:
    """The command that adds `extra` to this installation."""
    pipx = _pipx_source(Path(sys.prefix))
    if pipx is None:
        return f"pip install 'ansible-proxy[{extra}]'"
    source, extras = pipx
    wanted = ",".join(sorted({*extras, extra}))
    return f"{_pipx_env()}pipx install --force '{source}[{wanted}]'"


def _pipx_source(prefix: Path) -> tuple[str, set[str]] | None:
    """What pipx installed this virtualenv from (a name, a path or a URL) and with which
    extras; None when pipx did not make it (it keeps pipx_metadata.json in its root)."""
    try:
        meta = json.loads((prefix / "pipx_metadata.json").read_text(encoding="utf-8"))
        source = meta["main_package"]["package_or_url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(source, str) or not source:
        return None
    found = re.fullmatch(r"(.*?)\[([^\]]*)\]", source)
    if found is None:
        return source, set()
    return found.group(1), {e.strip() for e in found.group(2).split(",") if e.strip()}


def _pipx_env() -> str:
    """PIPX_HOME and PIPX_BIN_DIR as this install has them, when not pipx's defaults, so
    that the advice reinstalls this install and not another in the user's home."""
    home = Path(sys.prefix).parent.parent  # PIPX_HOME/venvs/<name>
    defaults = {Path.home() / ".local" / "share" / "pipx", Path.home() / ".local" / "pipx"}
    env = [] if home in defaults else [f"PIPX_HOME={home}"]
    link = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if link is not None and link.is_symlink() and not link.is_absolute():
        link = Path(os.getcwd(), link)
    if link is not None and link.is_symlink() and link.parent != Path.home() / ".local" / "bin":
        env.append(f"PIPX_BIN_DIR={link.parent}")
    return "".join(f"{item} " for item in env)


def _refuse(line: str) -> None:
    print(f"ansible-proxy: error: {line}", file=sys.stderr)
    sys.exit(EXIT_CONFIG)


def bin_manager() -> None:
    """The `bin-manager` console script: the server's CLI, when the server part is here."""
    require("bin-manager", "server", SERVER_MODULES, (3, 11))
    from ansible_proxy.server.cli.main import main  # start-up: only once it can import

    main()

"""`bin-manager db copy --from URL --to URL` (server/db/copy.py does the copy)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from ansible_proxy.errors import ConfigError
from ansible_proxy.server.cli.secret_files import Secret, read_secret_file

URL = Secret("database_url", "database URL", None, check_url=True)


def _url(inline: str | None, path: Path | None, flag: str) -> str:
    if inline is not None and path is not None:
        raise ConfigError(f"{flag} and {flag}-file go alone: give one")
    if path is not None:
        return read_secret_file(path, f"{flag}-file", URL)
    if inline is None:
        raise ConfigError(f"db copy needs {flag} URL (or {flag}-file FILE)")
    return inline


def db_copy(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    source = _url(args.source, args.source_file, "--from")
    target = _url(args.target, args.target_file, "--to")
    # Imported here: the admin commands never load the database layer (start-up time).
    from ansible_proxy.server.db.copy import copy_database

    total = copy_database(source, target, lambda line: print(f"  {line}"))
    print(f"copied {total} rows; now start bin-manager serve with the new database")
    return 0

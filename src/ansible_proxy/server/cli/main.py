"""`bin-manager`: serve the API (serve.py), or the admin commands over the admin API
(commands.py's table: publish, pin, list, nodes, rollout, sign, …).

The only server module that parses arguments and exits. Each command imports what it runs
when it runs: `--help` and the admin commands never load the server or uvicorn, and only
the admin commands load httpx (start-up time).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ansible_proxy import __version__
from ansible_proxy.commands import Command, add_commands, arg, lazy
from ansible_proxy.errors import AnsibleProxyError
from ansible_proxy.server.cli.commands import ADMIN_COMMANDS, ADMIN_FLAGS
from ansible_proxy.server.cli.team_commands import TEAM_COMMANDS

# Limits before work (docs/security.md): flag, setting, help. Each wins over its
# BIN_MANAGER_* variable; the defaults are in settings.py.
LIMIT_FLAGS = (
    ("--max-body-bytes", "max_body_bytes", int, "largest request body but an upload's (64 KiB)"),
    ("--max-url-bytes", "max_url_bytes", int, "longest URL, query included (8 KiB)"),
    ("--max-header-bytes", "max_header_bytes", int, "all request headers together (32 KiB)"),
    ("--header-timeout", "header_timeout_seconds", float, "seconds to send a request's head (10)"),
    ("--body-timeout", "body_timeout_seconds", float, "longest pause inside a body, seconds (30)"),
    ("--keepalive-timeout", "keepalive_seconds", int, "idle seconds between requests (5)"),
    ("--max-connections", "max_connections", int, "open connections per process (2048)"),
)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"not a number of workers from 1 to 64: {text!r}")
    return int(text)


SERVE = Command(
    "serve",
    "run the HTTP API",
    lazy("ansible_proxy.server.cli.serve", "serve"),
    (
        arg("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)"),
        arg("--port", type=_port, default=8080, help="TCP port (8080)"),
        arg(
            "--data-dir",
            type=Path,
            help="SQLite file and artifacts (BIN_MANAGER_DATA_DIR, default ./bin-manager-data)",
        ),
        arg(
            "--database-url",
            help="e.g. postgresql+psycopg://user:pw@host/db (BIN_MANAGER_DATABASE_URL; "
            "default: SQLite in the data dir); visible in `ps`: prefer --database-url-file",
        ),
        arg(
            "--database-url-file",
            type=Path,
            help="file holding the database URL, password included, alone on one line "
            "(BIN_MANAGER_DATABASE_URL_FILE)",
        ),
        *(
            arg(
                f"--{setting.replace('_', '-')}-file",
                type=Path,
                help=f"file holding the {what} (BIN_MANAGER_{setting.upper()}_FILE; "
                f"BIN_MANAGER_{setting.upper()} wins over that variable)",
            )
            for setting, what in (
                ("agent_token", "agent token"),
                ("metrics_token", "metrics token"),
                ("webhook_urls", "webhook URLs, one a line"),
            )
        ),
        arg(
            "--insecure-no-auth",
            action="store_true",
            default=None,
            help="no admin token at all (demos only)",
        ),
        arg(
            "--admin-token-file",
            type=Path,
            help="file holding the admin token (wins over BIN_MANAGER_ADMIN_TOKEN and "
            "BIN_MANAGER_ADMIN_TOKEN_FILE)",
        ),
        arg(
            "--enrolment-token-file",
            type=Path,
            help="file holding the token that enrols a new node at once (wins over "
            "BIN_MANAGER_ENROLMENT_TOKEN and BIN_MANAGER_ENROLMENT_TOKEN_FILE)",
        ),
        arg("--ssl-certfile", type=Path, help="serve HTTPS with this certificate"),
        arg("--ssl-keyfile", type=Path, help="private key of --ssl-certfile"),
        arg("--log-level", default="info", choices=["debug", "info", "warning", "error"]),
        arg(
            "--workers",
            type=_workers,
            default=1,
            help="server processes sharing the port (1); one per core uses every core "
            "(docs/bin-manager.md, 'More processes')",
        ),
        arg(
            "--require-signed",
            action="store_true",
            default=None,
            help="refuse a publish or pin without a signed statement "
            "(BIN_MANAGER_REQUIRE_SIGNED); BIN_MANAGER_TRUSTED_KEYS (an allowed_signers "
            "file) limits which keys may sign",
        ),
        *(
            arg(flag, dest=setting, type=kind, help=f"{text}; BIN_MANAGER_{setting.upper()}")
            for flag, setting, kind, text in LIMIT_FLAGS
        ),
    ),
    description="Run the API. Admin token: --admin-token-file, else BIN_MANAGER_ADMIN_TOKEN, "
    "else the file named by BIN_MANAGER_ADMIN_TOKEN_FILE; the enrolment token likewise "
    "(docs/security.md); optional agent token: BIN_MANAGER_AGENT_TOKEN; every secret "
    "also from a file (--database-url-file, BIN_MANAGER_DATABASE_URL_FILE, …); upload limit: "
    "BIN_MANAGER_MAX_UPLOAD_BYTES (default 2 GiB).",
    shared=False,
)


DB = Command(
    "db",
    "the server's database",
    verbs=(
        Command(
            "copy",
            "copy every row of one database into a new, empty one (SQLite to PostgreSQL)",
            lazy("ansible_proxy.server.cli.dbcopy", "db_copy"),
            (
                arg("--from", dest="source", metavar="URL", help="the database to copy"),
                arg("--from-file", dest="source_file", type=Path, help="a file holding it"),
                arg("--to", dest="target", metavar="URL", help="the empty database to fill"),
                arg("--to-file", dest="target_file", type=Path, help="a file holding it"),
            ),
            description="Copy releases, nodes, node credentials, signature sequences, "
            "rollouts, events, people and the audit trail, every table, from --from into "
            "--to (e.g. sqlite:////var/lib/bin-manager/bin-manager.sqlite3 to "
            "postgresql+psycopg://…). Stop `serve` first. Both schemas are migrated first; "
            "a --to holding rows is refused; the copy is one transaction. The artifacts "
            "stay in the data directory. A URL with a password: --from-file / --to-file.",
            shared=False,
        ),
    ),
    shared=False,
)


def build_parser() -> argparse.ArgumentParser:
    """`serve`, then every admin command; ADMIN_FLAGS for every one that talks to a server."""
    parser = argparse.ArgumentParser(
        prog="bin-manager",
        description="The central release server of ansible-proxy, and its admin client.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub, [SERVE, DB, *ADMIN_COMMANDS, *TEAM_COMMANDS], ADMIN_FLAGS)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: run one subcommand and exit with its code."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args, os.environ)
    except AnsibleProxyError as exc:
        print(f"bin-manager: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code)

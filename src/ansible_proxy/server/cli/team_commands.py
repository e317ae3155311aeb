"""The rows of `bin-manager users`, `tokens`, `audit` and `whoami` (their functions are in
team.py), registered by main.py with commands.py's ADMIN_COMMANDS: the same shared flags,
--json included."""

from __future__ import annotations

import argparse

from ansible_proxy.commands import Command, arg
from ansible_proxy.server.cli.commands import admin

ROLES = ("viewer", "publisher", "operator", "admin")
ROLE_HELP = "viewer, publisher, operator or admin (docs/security.md, 'Roles')"
BINS = arg(
    "--bins",
    metavar="GLOBS",
    help="limit the grant to these bins, by name or glob: web,api-* (publisher and operator)",
)
PERSON = arg("person", metavar="NAME")


def _days(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 3650:
        raise argparse.ArgumentTypeError(f"not a number of days from 0 to 3650: {text!r}")
    return int(text)


USERS = Command(
    "users",
    "people who log in to the dashboard: add, list, set-role, disable, enable, reset-password",
    description="Each person logs in to the dashboard with their own name and password and "
    "may do what their role allows (docs/security.md, 'People, roles and tokens').",
    verbs=(
        Command(
            "add",
            "add a person; prints their one-time password once",
            admin("team", "users_add"),
            (
                PERSON,
                arg(
                    "--role",
                    choices=ROLES,
                    help=f"{ROLE_HELP}; needed but for the first person (an admin)",
                ),
                BINS,
            ),
            description="Prints a one-time password, once: the person logs in with it and "
            "chooses their own before anything else. An installation's first `users add` "
            "(with the admin token) needs no --role: its first person is an admin.",
        ),
        Command("list", "people: role, state, last login", admin("team", "users_list")),
        Command(
            "set-role",
            "give a person another role (from their next request)",
            admin("team", "users_set_role"),
            (PERSON, arg("role", choices=ROLES, help=ROLE_HELP), BINS),
        ),
        Command(
            "disable",
            "refuse a person's logins; every session of theirs ends at once",
            admin("team", "users_disable"),
            (PERSON,),
        ),
        Command(
            "enable", "let a disabled person log in again", admin("team", "users_enable"), (PERSON,)
        ),
        Command(
            "reset-password",
            "a new one-time password for a person (printed once; their sessions end)",
            admin("team", "users_reset_password"),
            (PERSON,),
        ),
    ),
)

TOKEN = arg("token", metavar="NAME")
TOKENS = Command(
    "tokens",
    "API tokens for automation (a CI job): create, list, revoke",
    description="A token acts with its role on the bins it names, until it expires or is "
    "revoked; give it to `bin-manager` as BIN_MANAGER_API_TOKEN or --token-file.",
    verbs=(
        Command(
            "create",
            "create a token; prints it once, alone on stdout",
            admin("team", "tokens_create"),
            (
                TOKEN,
                arg("--role", required=True, choices=ROLES, help=ROLE_HELP),
                BINS,
                arg(
                    "--expires-days",
                    type=_days,
                    default=90,
                    metavar="N",
                    help="refused after N days (90); 0: never expires",
                ),
            ),
            description="Example, a CI job that may publish web and nothing else: tokens "
            "create ci-web --role publisher --bins web --expires-days 90 > ci-web.token",
        ),
        Command(
            "list",
            "tokens: fingerprint, role, bins, state, expiry, last use",
            admin("team", "tokens_list"),
        ),
        Command("revoke", "revoke a token at once", admin("team", "tokens_revoke"), (TOKEN,)),
    ),
)

AUDIT = Command(
    "audit",
    "the audit trail: who changed what, when and from where (newest first)",
    admin("team", "audit"),
    (
        arg("--actor", help="a person's or a token's name, or admin-token"),
        arg("--bin", help="one bin"),
        arg("--action", help="publish, pin, pause, rollout-promote, login, …"),
        arg("--limit", type=int, default=100, help="entries (1-1000, 100)"),
        arg("--before", type=int, metavar="ID", help="older than this entry (stderr says)"),
    ),
    description="Every change, login and refusal, newest first: who (a person, a token and "
    "its fingerprint, or admin-token), what, on what, when and from which address. "
    "Entries are never changed or deleted.",
)

WHOAMI = Command("whoami", "who the token is: its role, bins and rights", admin("team", "whoami"))

TEAM_COMMANDS: tuple[Command, ...] = (USERS, TOKENS, AUDIT, WHOAMI)

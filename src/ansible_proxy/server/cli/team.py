"""`bin-manager users …`, `tokens …`, `audit` and `whoami`: people, API tokens and the
audit trail from the shell (docs/bin-manager.md "People and tokens"). Calls the admin API
(server/api/team.py, api/audit.py) through client.py's `Admin`.

A one-time password and a new token are printed once, on stdout (a token alone on its
line, for a file or a CI secret store); what they are goes to stderr. Nothing here logs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ansible_proxy.errors import ConfigError
from ansible_proxy.server.cli.client import Admin, Shown
from ansible_proxy.table import render_table


def _bins(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _grant(row: dict[str, Any]) -> str:
    return str(row["role"]) + (f" for {','.join(row['bins'])}" if row.get("bins") else "")


def _when(iso: str | None) -> str:
    return iso.replace("T", " ").removesuffix("Z") if iso else "-"


# -- people ----------------------------------------------------------------------------------
def users_add(args: argparse.Namespace, admin: Admin) -> Shown:
    body = {"name": args.person, "role": args.role, "bins": _bins(args.bins)}
    data = admin.call("POST", "/users", json=body)
    text = (
        f"{data['name']}: added as {_grant(data)}\n"
        f"one-time password (shown once): {data['password']}\n"
        f"{data['name']} logs in at {admin.server}/dashboard/login and then chooses their own"
    )
    return Shown(text, data)


def users_list(args: argparse.Namespace, admin: Admin) -> Shown:
    rows = admin.call("GET", "/users")
    table = render_table(
        ("NAME", "ROLE", "STATE", "LAST LOGIN", "CREATED BY"),
        [
            (
                row["name"],
                _grant(row),
                "disabled"
                if row["disabled"]
                else "new password due"
                if row["mustChangePassword"]
                else "active",
                _when(row["lastLoginAt"]),
                row["createdBy"],
            )
            for row in rows
        ],
    )
    return Shown(table, rows)


def users_set_role(args: argparse.Namespace, admin: Admin) -> Shown:
    body = {"role": args.role, "bins": _bins(args.bins)}
    data = admin.call("POST", f"/users/{args.person}/role", json=body)
    return Shown(f"{data['name']}: now {_grant(data)}", data)


def users_disable(args: argparse.Namespace, admin: Admin) -> Shown:
    data = admin.call("POST", f"/users/{args.person}/disable")
    return Shown(f"{data['name']}: disabled; every session of theirs has ended", data)


def users_enable(args: argparse.Namespace, admin: Admin) -> Shown:
    data = admin.call("POST", f"/users/{args.person}/enable")
    return Shown(f"{data['name']}: enabled", data)


def users_reset_password(args: argparse.Namespace, admin: Admin) -> Shown:
    data = admin.call("POST", f"/users/{args.person}/password")
    text = (
        f"{data['name']}: one-time password (shown once): {data['password']}\n"
        "every session of theirs has ended; they choose their own at their next login"
    )
    return Shown(text, data)


# -- tokens ----------------------------------------------------------------------------------
def tokens_create(args: argparse.Namespace, admin: Admin) -> Shown:
    days = None if args.expires_days == 0 else args.expires_days
    body = {"name": args.token, "role": args.role, "bins": _bins(args.bins), "expiresDays": days}
    data = admin.call("POST", "/tokens", json=body)
    until = f"expires {_when(data['expiresAt'])}" if data["expiresAt"] else "never expires"
    print(
        f"token {data['name']} ({data['fingerprint']}): {_grant(data)}, {until}; shown this once",
        file=sys.stderr,
    )
    return Shown(data["token"], data)  # alone on stdout: for a file or a secret store


def tokens_list(args: argparse.Namespace, admin: Admin) -> Shown:
    rows = admin.call("GET", "/tokens")
    table = render_table(
        ("NAME", "FINGERPRINT", "ROLE", "STATE", "EXPIRES", "LAST USED", "CREATED BY"),
        [
            (
                row["name"],
                row["fingerprint"],
                _grant(row),
                row["state"],
                _when(row["expiresAt"]) if row["expiresAt"] else "never",
                _when(row["lastUsedAt"]),
                row["createdBy"],
            )
            for row in rows
        ],
    )
    return Shown(table, rows)


def tokens_revoke(args: argparse.Namespace, admin: Admin) -> Shown:
    data = admin.call("POST", f"/tokens/{args.token}/revoke")
    return Shown(f"token {data['name']} ({data['fingerprint']}): revoked", data)


# -- the audit trail, and who am I -----------------------------------------------------------
def audit(args: argparse.Namespace, admin: Admin) -> Shown:
    if not 1 <= args.limit <= 1000:
        raise ConfigError(f"--limit {args.limit}: from 1 to 1000")
    params: dict[str, Any] = {"limit": args.limit}
    for key, value in (
        ("actor", args.actor),
        ("bin", args.bin),
        ("action", args.action),
        ("before", args.before),
    ):
        if value is not None:
            params[key] = value
    body = admin.answer("GET", "/audit", params=params)
    rows: list[dict[str, Any]] = body.get("data") or []
    if body.get("next"):
        print(f"older entries: --before {body['next']}", file=sys.stderr)
    table = render_table(
        ("WHEN (UTC)", "WHO", "ACTION", "OUTCOME", "BIN", "TARGET", "RELEASE", "FROM", "DETAIL"),
        [
            (
                _when(row["at"]),
                row["actor"] + (f" ({row['fingerprint']})" if row["fingerprint"] else ""),
                row["action"],
                row["outcome"],
                row["binName"] or "-",
                row["target"] or "-",
                (row["sha256"] or "")[:12] + (f" {row['arch']}" if row["arch"] else "") or "-",
                row["address"],
                row["detail"] or "",
            )
            for row in rows
        ],
    )
    return Shown(table, rows)


def whoami(args: argparse.Namespace, admin: Admin) -> Shown:
    data = admin.call("GET", "/whoami")
    who = {"token": f"token {data['name']} ({data['fingerprint']})", "user": data["name"]}
    text = f"{who.get(data['kind'], data['kind'])}: {_grant(data)}; rights: " + ", ".join(
        data["rights"]
    )
    return Shown(text, data)

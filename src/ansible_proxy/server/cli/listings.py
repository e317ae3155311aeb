"""`bin-manager list bins | releases BIN | nodes [BIN]`, and what every listing of the
admin CLI shows a person: a table per listing (its columns here), the server's answer as
JSON with --json (client.py).

Releases show their whole sha256 (what `pin` and `delete-release` take); other tables its
first 12 characters, as the agent's `status` does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ansible_proxy.errors import ConfigError
from ansible_proxy.server.cli import paging
from ansible_proxy.server.cli.client import Admin, Shown, call
from ansible_proxy.table import render_table


def list_command(args: argparse.Namespace, admin: Admin) -> Shown:
    """`list bins`, `list releases BIN`, `list nodes [BIN]`."""
    if args.what == "nodes":
        rows = nodes(args, admin)
        return Shown(bin_nodes_table(rows) if args.bin else nodes_table(rows), rows)
    if args.what == "releases":
        if not args.bin:
            raise ConfigError("`list releases` needs the bin name")
        rows = admin.call("GET", f"/bins/{args.bin}/releases")
        return Shown(releases_table(rows), rows)
    rows = admin.call("GET", "/bins")
    return Shown(bins_table(rows), rows)


def nodes(args: argparse.Namespace, admin: Admin) -> list[dict[str, Any]]:
    """Every node (page after page), or the one page --limit/--after ask for."""
    path = f"/bins/{args.bin}/nodes" if getattr(args, "bin", None) else "/nodes"
    prefix = getattr(args, "prefix", "")
    params = {"prefix": prefix} if prefix else {}
    limit, after = getattr(args, "limit", None), getattr(args, "after", None)
    if limit is None and after is None:
        return paging.every_page(call, admin.http, f"{admin.base}{path}", params)
    params["limit"] = str(limit or paging.PAGE_SIZE)
    if after:
        params["after"] = after
    body = admin.answer("GET", path, params=params)
    if body.get("next"):
        print(f"more: --after {body['next']}", file=sys.stderr)
    rows: list[dict[str, Any]] = body.get("data") or []
    return rows


def bins_table(rows: list[dict[str, Any]]) -> str:
    return render_table(
        ("BIN", "LATEST", "RELEASES", "NODES", "PAUSED", "CREATED"),
        [
            (
                row["binName"],
                ", ".join(f"{arch} {_short(sha)}" for arch, sha in row["latest"].items()) or "-",
                str(row["releases"]),
                str(row["nodes"]),
                "paused" if row["paused"] else "-",
                _cell(row.get("createdAt")),
            )
            for row in rows
        ],
    )


def releases_table(rows: list[dict[str, Any]]) -> str:
    return render_table(
        ("SHA256", "ARCH", "SIZE", "PUBLISHED", "LATEST"),
        [
            (
                row["sha256"],
                row["arch"],
                str(row["size"]),
                _cell(row.get("publishedAt")),
                "latest" if row["latest"] else "-",
            )
            for row in rows
        ],
    )


def nodes_table(rows: list[dict[str, Any]]) -> str:
    return render_table(
        ("NODE", "ARCH", "OS", "AGENT", "LABELS", "LAST SEEN"),
        [
            (
                row["nodeName"],
                _cell(row.get("cpuArch")),
                _cell(row.get("osRelease")),
                _cell(row.get("binProxyVersion")),
                _cell(row.get("labels")),
                _cell(row.get("lastSeen")),
            )
            for row in rows
        ],
    )


def bin_nodes_table(rows: list[dict[str, Any]]) -> str:
    return render_table(
        ("NODE", "ARCH", "SHA256", "VERSION", "REPORTED"),
        [
            (
                row["nodeName"],
                _cell(row.get("cpuArch")),
                _short(row.get("sha256")),
                _cell(row.get("version")),
                _cell(row.get("reportedAt")),
            )
            for row in rows
        ],
    )


def pending_table(rows: list[dict[str, Any]]) -> str:
    """`nodes list --pending`: the requests waiting for approval."""
    if not rows:
        return "no enrolment is waiting for approval"
    states = {
        "none": "new",
        "revoked": "revoked before",
        "enrolled": "enrolled: approving replaces its credential",
    }
    return render_table(
        ("NODE", "FINGERPRINT", "FROM", "SINCE", "STATUS"),
        [
            (
                row["nodeName"],
                row["pending"]["fingerprint"],
                _cell(row["pending"].get("address")),
                _cell(row["pending"].get("since")),
                states.get(row["status"], row["status"]),
            )
            for row in rows
        ],
    )


def proxies_table(rows: list[dict[str, Any]]) -> str:
    return render_table(
        ("PROXY", "FINGERPRINT", "NODES", "CREATED", "REVOKED"),
        [
            (
                row["name"],
                row["fingerprint"],
                str(row["nodes"]),
                _cell(row.get("createdAt")),
                _cell(row.get("revokedAt")),
            )
            for row in rows
        ],
    )


def credential_text(data: dict[str, Any]) -> str:
    """`nodes show NAME`: one line per fact of its credential."""
    pending = data.get("pending")
    lines = [
        ("node", data["nodeName"]),
        ("status", data["status"]),
        ("fingerprint", _cell(data.get("fingerprint"))),
        ("proxy", _cell(data.get("proxy"))),
        ("admin labels", _cell(data.get("adminLabels"))),
        (
            "pending",
            f"{pending['fingerprint']} from {_cell(pending.get('address'))} "
            f"since {_cell(pending.get('since'))}"
            if pending
            else "-",
        ),
    ]
    return "\n".join(f"{key + ':':<14}{value}" for key, value in lines)


def _short(sha: object) -> str:
    return str(sha)[:12] if sha else "-"


def _cell(value: object) -> str:
    return str(value) if value not in (None, "") else "-"

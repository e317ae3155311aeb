"""`bin-manager nodes …` and `bin-manager proxies …`: node credentials from the shell.

nodes list [--pending] | nodes approve NAME [--fingerprint F] | nodes reject NAME… |
nodes reject --all-pending | nodes reject --older-than DURATION | nodes revoke NAME |
nodes show NAME | nodes label NAME [k=v …] [k- …] | nodes delete NAME [--keep-credential];
proxies create NAME (prints the token once) | proxies list | proxies revoke NAME. Calls the
admin API (server/api/credentials.py) through client.py's `Admin`.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from ansible_proxy.errors import ConfigError
from ansible_proxy.names import format_labels, parse_labels
from ansible_proxy.server.cli import listings
from ansible_proxy.server.cli.client import Admin, Shown

_NODE_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")  # it becomes part of a URL
_DURATION = re.compile(r"([0-9]{1,9})([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _node(name: str) -> str:
    if _NODE_NAME.fullmatch(name) is None:
        raise ConfigError(f"invalid node name {name!r}")
    return name


def nodes_list(args: argparse.Namespace, admin: Admin) -> Shown:
    if not args.pending:
        rows = listings.nodes(args, admin)
        return Shown(listings.nodes_table(rows), rows)
    rows = admin.call("GET", "/credentials/pending")
    return Shown(listings.pending_table(rows), rows)


def approve(args: argparse.Namespace, admin: Admin) -> Shown:
    node = _node(args.node)
    body = {"fingerprint": args.fingerprint}
    data = admin.call("POST", f"/credentials/{node}/approve", json=body)
    shown = data["fingerprint"] or f"proxy {data['proxy']}"
    return Shown(f"{node}: approved (credential {shown})", data)


def reject(args: argparse.Namespace, admin: Admin) -> Shown:
    for name in args.node:
        _node(name)
    data = admin.call("POST", "/credentials/pending/reject", json=_rejection(args))
    return Shown(f"rejected {data['rejected']} pending enrolment(s)", data)


def revoke(args: argparse.Namespace, admin: Admin) -> Shown:
    node = _node(args.node)
    data = admin.call("POST", f"/credentials/{node}/revoke")
    return Shown(f"{node}: revoked; it may come back only by approval", data)


def show(args: argparse.Namespace, admin: Admin) -> Shown:
    data = admin.call("GET", f"/credentials/{_node(args.node)}")
    return Shown(listings.credential_text(data), data)


_AFTER = {
    "revoked": "its credential is revoked: it may come back only by approval",
    "kept": "its credential is kept: its next tick registers it again",
}


def delete(args: argparse.Namespace, admin: Admin) -> Shown:
    node = _node(args.node)
    params = {"keepCredential": "true"} if args.keep_credential else {}
    data = admin.call("DELETE", f"/nodes/{node}", params=params)
    text = f"{node}: deleted from the fleet and {data['rollouts']} rollout(s); "
    return Shown(text + _AFTER[data["credential"]], data)


def _rejection(args: argparse.Namespace) -> dict[str, Any]:
    """The body of POST …/credentials/pending/reject: exactly one way of choosing."""
    given = [bool(args.node), args.all_pending, args.older_than is not None]
    if sum(given) != 1:
        raise ConfigError("nodes reject: name nodes, or give --all-pending or --older-than")
    if args.node:
        return {"nodeNames": args.node}
    if args.all_pending:
        return {"all": True}
    found = _DURATION.fullmatch(args.older_than.strip())
    if found is None:
        raise ConfigError(f"--older-than {args.older_than!r}: a duration like 90s, 30m, 12h, 2d")
    return {"olderThanSeconds": int(found.group(1)) * _UNITS[found.group(2)]}


def label(args: argparse.Namespace, admin: Admin) -> Shown:
    """Set (k=v) and remove (k-) a node's admin labels; print them."""
    node = _node(args.node)
    if not args.labels:
        data = admin.call("GET", f"/credentials/{node}")
        shown = data["adminLabels"]
        return Shown(shown or f"{node}: no admin labels", {"nodeName": node, "adminLabels": shown})
    change: dict[str, Any] = {"set": {}, "remove": []}
    for item in args.labels:
        if item.endswith("-") and "=" not in item:
            change["remove"].append(item[:-1])
            continue
        try:
            change["set"].update(parse_labels(item))
        except ValueError as exc:
            raise ConfigError(f"nodes label: {exc}") from None
    data = admin.call("POST", f"/nodes/{node}/labels", json=change)
    return Shown(f"{node}: admin labels {format_labels(data['adminLabels']) or 'none'}", data)


def proxies_create(args: argparse.Namespace, admin: Admin) -> Shown:
    data = admin.call("POST", "/proxies", json={"name": args.proxy})
    return Shown(data["token"], data)  # the only time it is shown: stdout alone, for a file


def proxies_list(args: argparse.Namespace, admin: Admin) -> Shown:
    rows = admin.call("GET", "/proxies")
    return Shown(listings.proxies_table(rows), rows)


def proxies_revoke(args: argparse.Namespace, admin: Admin) -> Shown:
    data = admin.call("POST", f"/proxies/{args.proxy}/revoke")
    return Shown(f"proxy {args.proxy}: revoked", data)

"""`bin-manager nodes …` and `bin-manager proxies …`: node credentials from the shell.

nodes list --pending | nodes approve NAME [--fingerprint F] | nodes reject NAME… |
nodes reject --all-pending | nodes reject --older-than DURATION | nodes revoke NAME |
nodes show NAME | nodes label NAME [k=v …] [k- …] | nodes delete NAME [--keep-credential];
proxies create NAME (prints the token
once) | proxies list | proxies revoke NAME. Calls the admin API
(server/api/credentials.py) with client.py's HTTP client and error handling.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from typing import Any

import httpx

from ansible_proxy.errors import ConfigError
from ansible_proxy.names import format_labels, parse_labels
from ansible_proxy.server.cli import paging

Call = Callable[..., Any]
_NODE_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")  # it becomes part of a URL
_DURATION = re.compile(r"([0-9]{1,9})([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def add_subcommands(sub: Any, common: argparse.ArgumentParser) -> None:
    nodes = sub.add_parser(
        "nodes",
        parents=[common],
        help="nodes and their credentials: list pending enrolments, approve, revoke, label, "
        "delete (docs/security.md)",
    )
    verbs = nodes.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="list nodes (--pending: enrolments to approve)")
    listing.add_argument("--pending", action="store_true", help="only enrolments to approve")
    approve = verbs.add_parser("approve", help="make a pending enrolment the node's credential")
    approve.add_argument("node")
    approve.add_argument(
        "--fingerprint", help="refuse unless the pending token has this fingerprint (12 hex)"
    )
    reject = verbs.add_parser(
        "reject",
        help="drop pending enrolments (nothing of them is kept; a node may ask again)",
        description="Drop the pending requests of the nodes named, or --all-pending, or "
        "those waiting --older-than a duration (90s, 30m, 12h, 2d).",
    )
    reject.add_argument("node", nargs="*", help="the nodes whose pending request to drop")
    reject.add_argument("--all-pending", action="store_true", help="every pending request")
    reject.add_argument("--older-than", metavar="DURATION", help="requests waiting longer")
    verbs.add_parser("revoke", help="revoke a node's credential at once").add_argument("node")
    verbs.add_parser("show", help="a node's credential (status, fingerprint)").add_argument("node")
    label = verbs.add_parser(
        "label",
        help="set labels on a node that only an admin can set (rollout set --canary-label)",
        description="k=v sets a label, k- removes it; with none, prints the node's admin "
        "labels. Unlike NODE_LABELS, which a node reports itself, no node can set these.",
    )
    label.add_argument("node")
    label.add_argument("labels", nargs="*", metavar="k=v|k-")
    delete = verbs.add_parser(
        "delete",
        help="remove a decommissioned node from the fleet and its rollouts; revoke its credential",
        description="Removes the node, what it reported and its rollout memberships (no wave "
        "waits for it any more), and revokes its credential so that it cannot simply come "
        "back: a host installed again asks as a new pending enrolment.",
    )
    delete.add_argument("node")
    delete.add_argument(
        "--keep-credential",
        action="store_true",
        help="keep its credential: its next tick registers it again",
    )

    proxies = sub.add_parser(
        "proxies", parents=[common], help="cluster proxies' credentials (docs/cluster.md)"
    )
    pverbs = proxies.add_subparsers(dest="verb", required=True)
    pverbs.add_parser("create", help="create a proxy; prints its token once").add_argument("proxy")
    pverbs.add_parser("list", help="list proxies and how many nodes each owns")
    pverbs.add_parser("revoke", help="revoke a proxy's token").add_argument("proxy")


def run(args: argparse.Namespace, http: httpx.Client, base: str, call: Call) -> None:
    """Run `nodes …` or `proxies …`; print the result on stdout."""
    node = getattr(args, "node", None)
    for name in node if isinstance(node, list) else [node] if node is not None else []:
        if _NODE_NAME.fullmatch(name) is None:
            raise ConfigError(f"invalid node name {name!r}")
    if args.command == "nodes":
        _nodes(args, http, base, call)
    else:
        _proxies(args, http, base, call)


def _nodes(args: argparse.Namespace, http: httpx.Client, base: str, call: Call) -> None:
    if args.verb == "list":
        if not args.pending:
            print(json.dumps(paging.every_page(call, http, f"{base}/nodes"), indent=2))
            return
        rows = call(http, "GET", f"{base}/credentials/pending")
        if not rows:
            print("no enrolment is waiting for approval")
        states = {
            "revoked": "revoked before",
            "enrolled": "enrolled: approving replaces its credential",
        }
        for row in rows:
            pending = row["pending"]
            print(
                f"{row['nodeName']}  fingerprint {pending['fingerprint']}  "
                f"from {pending['address'] or '-'}  since {pending['since']}  "
                f"({states.get(row['status'], row['status'])})"
            )
    elif args.verb == "approve":
        body = {"fingerprint": args.fingerprint}
        data = call(http, "POST", f"{base}/credentials/{args.node}/approve", json=body)
        shown = data["fingerprint"] or f"proxy {data['proxy']}"
        print(f"{args.node}: approved (credential {shown})")
    elif args.verb == "reject":
        body = _rejection(args)
        data = call(http, "POST", f"{base}/credentials/pending/reject", json=body)
        print(f"rejected {data['rejected']} pending enrolment(s)")
    elif args.verb == "label":
        _label(args, http, base, call)
    elif args.verb == "revoke":
        call(http, "POST", f"{base}/credentials/{args.node}/revoke")
        print(f"{args.node}: revoked; it may come back only by approval")
    elif args.verb == "delete":
        params = {"keepCredential": "true"} if args.keep_credential else {}
        data = call(http, "DELETE", f"{base}/nodes/{args.node}", params=params)
        print(
            f"{args.node}: deleted from the fleet and {data['rollouts']} rollout(s); "
            + _AFTER[data["credential"]]
        )
    else:
        print(json.dumps(call(http, "GET", f"{base}/credentials/{args.node}"), indent=2))


_AFTER = {
    "revoked": "its credential is revoked: it may come back only by approval",
    "kept": "its credential is kept: its next tick registers it again",
}


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


def _label(args: argparse.Namespace, http: httpx.Client, base: str, call: Call) -> None:
    """Set (k=v) and remove (k-) a node's admin labels; print them."""
    if not args.labels:
        shown = call(http, "GET", f"{base}/credentials/{args.node}")["adminLabels"]
        print(shown or f"{args.node}: no admin labels")
        return
    change: dict[str, Any] = {"set": {}, "remove": []}
    for item in args.labels:
        if item.endswith("-") and "=" not in item:
            change["remove"].append(item[:-1])
            continue
        try:
            change["set"].update(parse_labels(item))
        except ValueError as exc:
            raise ConfigError(f"nodes label: {exc}") from None
    data = call(http, "POST", f"{base}/nodes/{args.node}/labels", json=change)
    print(f"{args.node}: admin labels {format_labels(data['adminLabels']) or 'none'}")


def _proxies(args: argparse.Namespace, http: httpx.Client, base: str, call: Call) -> None:
    if args.verb == "create":
        data = call(http, "POST", f"{base}/proxies", json={"name": args.proxy})
        print(data["token"])  # the only time it is shown: stdout alone, for a file
    elif args.verb == "revoke":
        call(http, "POST", f"{base}/proxies/{args.proxy}/revoke")
        print(f"proxy {args.proxy}: revoked")
    else:
        print(json.dumps(call(http, "GET", f"{base}/proxies"), indent=2))

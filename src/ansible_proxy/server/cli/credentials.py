"""`bin-manager nodes …` and `bin-manager proxies …`: node credentials from the shell.

nodes list --pending | nodes approve NAME [--fingerprint F] | nodes revoke NAME |
nodes show NAME; proxies create NAME (prints the token once) | proxies list |
proxies revoke NAME. Calls the admin API (server/api/credentials.py) with client.py's
HTTP client and error handling.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from typing import Any

import httpx

from ansible_proxy.errors import ConfigError
from ansible_proxy.server.cli import paging

Call = Callable[..., Any]
_NODE_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")  # it becomes part of a URL


def add_subcommands(sub: Any, common: argparse.ArgumentParser) -> None:
    nodes = sub.add_parser(
        "nodes",
        parents=[common],
        help="node credentials: list pending enrolments, approve, revoke (docs/security.md)",
    )
    verbs = nodes.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="list nodes (--pending: enrolments to approve)")
    listing.add_argument("--pending", action="store_true", help="only enrolments to approve")
    approve = verbs.add_parser("approve", help="make a pending enrolment the node's credential")
    approve.add_argument("node")
    approve.add_argument(
        "--fingerprint", help="refuse unless the pending token has this fingerprint (12 hex)"
    )
    verbs.add_parser("revoke", help="revoke a node's credential at once").add_argument("node")
    verbs.add_parser("show", help="a node's credential (status, fingerprint)").add_argument("node")

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
    if node is not None and _NODE_NAME.fullmatch(node) is None:
        raise ConfigError(f"invalid node name {node!r}")
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
        for row in rows:
            pending = row["pending"]
            print(
                f"{row['nodeName']}  fingerprint {pending['fingerprint']}  "
                f"from {pending['address'] or '-'}  since {pending['since']}  "
                f"({'revoked before' if row['status'] == 'revoked' else row['status']})"
            )
    elif args.verb == "approve":
        body = {"fingerprint": args.fingerprint}
        data = call(http, "POST", f"{base}/credentials/{args.node}/approve", json=body)
        shown = data["fingerprint"] or f"proxy {data['proxy']}"
        print(f"{args.node}: approved (credential {shown})")
    elif args.verb == "revoke":
        call(http, "POST", f"{base}/credentials/{args.node}/revoke")
        print(f"{args.node}: revoked; it may come back only by approval")
    else:
        print(json.dumps(call(http, "GET", f"{base}/credentials/{args.node}"), indent=2))


def _proxies(args: argparse.Namespace, http: httpx.Client, base: str, call: Call) -> None:
    if args.verb == "create":
        data = call(http, "POST", f"{base}/proxies", json={"name": args.proxy})
        print(data["token"])  # the only time it is shown: stdout alone, for a file
    elif args.verb == "revoke":
        call(http, "POST", f"{base}/proxies/{args.proxy}/revoke")
        print(f"proxy {args.proxy}: revoked")
    else:
        print(json.dumps(call(http, "GET", f"{base}/proxies"), indent=2))

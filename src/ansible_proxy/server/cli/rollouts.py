"""`bin-manager rollout …`: staged rollouts from the shell (docs/bin-manager.md "Rollouts").

rollout set BIN [--arch A] (--immediate | --canary N|P% --waves P%,… --bake S
--max-failures N|P% [--canary-label [reported:]k=v] [--canary-nodes a,b]) |
rollout status BIN [--json] |
rollout promote | halt | resume | abort BIN [--arch A]. Calls the admin API
(server/api/rollouts.py) with client.py's HTTP client and error handling.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import httpx

from ansible_proxy.errors import ConfigError

Call = Callable[..., Any]

ACTIONS = {
    "promote": "start the next wave now, without waiting for the bake",
    "halt": "tell no more nodes the release; those told keep it",
    "resume": "go on after a halt (a reverted release is re-enabled, its failures forgiven)",
    "abort": "halt and revert: every node is told the previous release again",
}


def add_subcommands(sub: Any, common: argparse.ArgumentParser) -> None:
    rollout = sub.add_parser(
        "rollout",
        parents=[common],
        help="staged rollouts: set a bin's policy, show its waves, promote, halt, resume, abort",
        description="A staged rollout tells a new release to a canary wave first, then to each "
        "wave in turn once the one before stayed healthy for the bake time; a wave whose "
        "failures reach --max-failures halts it and reverts the fleet (docs/bin-manager.md).",
    )
    verbs = rollout.add_subparsers(dest="verb", required=True)
    late = _after_the_verb(common)
    setting = verbs.add_parser(
        "set",
        parents=[late],
        help="set a bin's rollout policy (used from its next publish)",
        description="Example: rollout set web --canary 1 --waves 25%,100% --bake 600 "
        "--max-failures 1. Shares in --waves are of the whole fleet, cumulative.",
    )
    setting.add_argument("bin")
    setting.add_argument("--arch", help="only for this arch (default: every arch)")
    setting.add_argument("--immediate", action="store_true", help="every node at once (no staging)")
    setting.add_argument("--canary", help="the first wave: N nodes or P%% of them (at least 1)")
    setting.add_argument("--waves", help="then waves up to these shares of the fleet: 25%%,100%%")
    setting.add_argument("--bake", help="seconds each wave's nodes must stay healthy")
    setting.add_argument(
        "--max-failures", help="failed nodes that halt a wave: N, or P%% of the wave"
    )
    setting.add_argument(
        "--canary-label",
        help="k=v: the nodes an admin labelled so (nodes label) are the canary; "
        "reported:k=v: the nodes whose own NODE_LABELS say so (a node's word)",
    )
    setting.add_argument("--canary-nodes", help="a,b: these nodes are the canary (by name)")
    status = verbs.add_parser("status", parents=[late], help="the bin's rollouts, wave by wave")
    status.add_argument("bin")
    status.add_argument("--json", action="store_true", help="the whole status as JSON")
    for verb, text in ACTIONS.items():
        action = verbs.add_parser(verb, parents=[late], help=text)
        action.add_argument("bin")
        action.add_argument("--arch", help="only this arch's rollout (default: every arch)")


def _after_the_verb(common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`common`'s flags once more for after the verb (`rollout status web --server URL`);
    unset they leave alone what was given before the verb (argparse would reset it)."""
    late = argparse.ArgumentParser(add_help=False)
    for action in common._actions:
        options: dict[str, Any] = {"dest": action.dest, "help": action.help}
        if action.type is not None:
            options["type"] = action.type
        if action.metavar is not None:
            options["metavar"] = action.metavar
        late.add_argument(*action.option_strings, default=argparse.SUPPRESS, **options)
    return late


def run(args: argparse.Namespace, http: httpx.Client, base: str, call: Call) -> None:
    """Run one `rollout …` verb; print its result on stdout."""
    url = f"{base}/bins/{args.bin}/rollout"
    if args.verb == "set":
        body = {
            "arch": args.arch,
            "immediate": args.immediate,
            "canary": args.canary,
            "waves": args.waves,
            "bakeSeconds": _seconds(args.bake),
            "maxFailures": args.max_failures,
            "canaryLabel": args.canary_label,
            "canaryNodes": args.canary_nodes,
        }
        data = call(http, "PUT", f"{url}/policy", json=body)
        where = f" ({data['arch']})" if data.get("arch") else ""
        print(f"{args.bin}{where}: rollout policy {data['describe']} (from the next publish)")
    elif args.verb == "status":
        data = call(http, "GET", url)
        print(json.dumps(data, indent=2) if args.json else describe(data))
    else:
        data = call(http, "POST", f"{url}/{args.verb}", json={"arch": args.arch})
        for line in data["done"]:
            print(line)


def _seconds(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.strip().isdigit():
        raise ConfigError(f"--bake {text!r}: a number of seconds")
    return int(text)


def describe(data: dict[str, Any]) -> str:
    """`rollout status` as text: each arch's rollout, its waves and their nodes."""
    lines = []
    policies = data.get("policies") or {}
    own = "; ".join(
        f"{'every arch' if arch == '*' else arch}: {_policy(p)}"
        for arch, p in sorted(policies.items())
    )
    paused = (
        f" — paused: no node is told anything new until `bin-manager resume {data['binName']}`"
        if data.get("paused")
        else ""
    )
    lines.append(
        f"{data['binName']}: policy {own or _policy(data['defaultPolicy']) + ' (the default)'}"
        f"{paused}"
    )
    if not data.get("rollouts"):
        lines.append("  no staged rollout yet")
    for rollout in data.get("rollouts", []):
        state = rollout["state"] + (" and reverted" if rollout["reverted"] else "")
        lines.append(
            f"{rollout['arch']}: {state}: {rollout['release'][:12]} "
            f"(previous {rollout['previous'][:12]}), started {rollout['startedAt']}"
        )
        if rollout.get("reason"):
            lines.append(f"  why: {rollout['reason']}")
        lines.extend(_ways_out(data["binName"], rollout))
        for wave in rollout["waves"]:
            limit = wave.get("failureLimit")
            bake = f", bake {wave['bakeRemaining']} s left" if wave.get("bakeRemaining") else ""
            lines.append(
                f"  {wave['name']:<11} {wave['state']:<8} {_nodes(wave['size'])}, "
                f"failures {wave['failures']}/{limit}{bake}"
            )
            for node in wave["nodes"]:
                why = f"  ({node['reason']})" if node.get("reason") else ""
                left = f"  {node['bakeRemaining']} s to bake" if node.get("bakeRemaining") else ""
                lines.append(f"    {node['name']:<24} {node['state']}{left}{why}")
            hidden = wave["size"] - len(wave["nodes"])
            if hidden > 0:
                lines.append(f"    … and {hidden} more")
    return "\n".join(lines)


def _ways_out(bin_name: str, rollout: dict[str, Any]) -> list[str]:
    """The lines that say why a rollout waits, who it left out, and after a revert who is
    told back their own previous release and who still runs the reverted one."""
    lines = []
    stuck = rollout.get("stuck")
    if stuck:
        lines.append(
            f"  stuck since {stuck['since']}: waiting on {stuck['text']} "
            f"(`bin-manager rollout promote {bin_name}` moves on)"
        )
    left = rollout.get("leftOut") or []
    if left:
        shown = ", ".join(f"{node['name']} ({node['reason']})" for node in left[:10])
        more = rollout.get("leftOutCount", len(left)) - min(len(left), 10)
        lines.append(f"  left out: {shown}" + (f" and {more} more" if more > 0 else ""))
    revert = rollout.get("revert") or {}
    for node in revert.get("toldBack", []):
        lines.append(
            f"  {node['name']} is told {node['release'][:12]}, the release it ran before "
            f"{rollout['release'][:12]} (one step back, as its host allows unsigned)"
        )
    for node in revert.get("stranded", []):
        why = f": {node['reason']}" if node.get("reason") else " (not moved yet)"
        lines.append(
            f"  {node['name']} still runs {rollout['release'][:12]} (marked bad), "
            f"told {node['told'][:12]}{why}"
        )
    if revert.get("stranded"):
        lines.append(f"  way out: {revert['wayOut']}")
    return lines


def _nodes(count: int) -> str:
    return "1 node" if count == 1 else f"{count} nodes"


def _policy(policy: dict[str, Any]) -> str:
    return str(policy.get("describe", policy))

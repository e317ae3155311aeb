"""`bin-manager rollout …`: staged rollouts from the shell (docs/bin-manager.md "Rollouts").

rollout set BIN [--arch A] (--immediate | --canary N|P% --waves P%,… --bake S
--max-failures N|P% [--canary-label [reported:]k=v] [--canary-nodes a,b]
[--max-offline N|P%] [--max-refused N|P%] [--watch DURATION]) |
rollout status BIN [--json] |
rollout promote | halt | resume | abort BIN [--arch A] |
rollout revert BIN [--arch A] --reason TEXT | rollout plan BIN [--arch A]. Calls the
admin API
(server/api/rollouts.py) through client.py's `Admin`.
"""

from __future__ import annotations

import argparse
from typing import Any

from ansible_proxy.errors import ConfigError
from ansible_proxy.server.cli.client import Admin, Shown


def set_policy(args: argparse.Namespace, admin: Admin) -> Shown:
    body = {
        "arch": args.arch,
        "immediate": args.immediate,
        "canary": args.canary,
        "waves": args.waves,
        "bakeSeconds": _seconds(args.bake),
        "maxFailures": args.max_failures,
        "canaryLabel": args.canary_label,
        "canaryNodes": args.canary_nodes,
        "maxOffline": args.max_offline,
        "maxRefused": args.max_refused,
        "watchSeconds": _duration(args.watch),
        "window": args.window,
    }
    data = admin.call("PUT", f"/bins/{args.bin}/rollout/policy", json=body)
    where = f" ({data['arch']})" if data.get("arch") else ""
    return Shown(
        f"{args.bin}{where}: rollout policy {data['describe']} (from the next publish)", data
    )


def status(args: argparse.Namespace, admin: Admin) -> Shown:
    data = admin.call("GET", f"/bins/{args.bin}/rollout")
    return Shown(describe(data), data)


def act(args: argparse.Namespace, admin: Admin) -> Shown:
    """promote, halt, resume or abort: the lines saying what was done."""
    data = admin.call("POST", f"/bins/{args.bin}/rollout/{args.verb}", json={"arch": args.arch})
    return Shown("\n".join(data["done"]), data)


def plan(args: argparse.Namespace, admin: Admin) -> Shown:
    """`rollout plan`: the waves a publish would start now, and when at the earliest."""
    data = admin.call("GET", f"/bins/{args.bin}/rollout/plan", params=_given(arch=args.arch))
    return Shown(describe_plan(data), data)


def _given(**params: str | None) -> dict[str, str]:
    return {key: value for key, value in params.items() if value}


def describe_plan(data: dict[str, Any]) -> str:
    """The plan as text: per arch, each wave's nodes and when it starts at the earliest."""
    lines = []
    for each in data["plans"]:
        source = {"default": " (the default)", "bin/arch": f" ({each['arch']} only)"}
        lines.append(
            f"{data['binName']} ({each['arch']}): policy {_policy(each['policy'])}"
            f"{source.get(each['policySource'], '')}"
        )
        if each.get("note"):
            lines.append(f"  {each['note']}")
        if each.get("freeze"):
            frozen = each["freeze"]
            lines.append(f"  frozen until {frozen['until']}: {frozen['reason']}")
        for wave in each["waves"]:
            when = _after(wave["earliestSeconds"])
            shown = ", ".join(wave["nodes"][:10])
            more = wave["size"] - min(len(wave["nodes"]), 10)
            lines.append(
                f"  {wave['name']:<11} {_nodes(wave['size']):<9} {when:<28} {shown}"
                + (f" and {more} more" if more > 0 else "")
            )
        if each.get("completesAfterSeconds") is not None:
            lines.append(f"  completed {_after(each['completesAfterSeconds'])}")
        left = each.get("leftOut") or []
        if left:
            shown = ", ".join(f"{node['name']} ({node['reason']})" for node in left[:10])
            more = each["leftOutCount"] - min(len(left), 10)
            lines.append(f"  left out: {shown}" + (f" and {more} more" if more > 0 else ""))
    return "\n".join(lines) or f"{data['binName']}: no release yet: nothing to plan"


def _after(seconds: int) -> str:
    """`at the publish`, or `90s after the publish, at the earliest`."""
    from ansible_proxy.server.rollouts.options import format_duration  # pure

    if not seconds:
        return "at the publish"
    return f"{format_duration(seconds)} after, at the earliest"


def freeze(args: argparse.Namespace, admin: Admin) -> Shown:
    """`bin-manager freeze --until … --reason …`."""
    data = admin.call("PUT", "/freeze", json={"until": args.until, "reason": args.reason})
    text = f"frozen until {data['until']}: {data['reason']} (bin-manager unfreeze ends it)"
    return Shown(text, data)


def unfreeze(args: argparse.Namespace, admin: Admin) -> Shown:
    data = admin.call("DELETE", "/freeze")
    return Shown("not frozen: held waves start at the next check", data)


def revert(args: argparse.Namespace, admin: Admin) -> Shown:
    """The emergency path: the lines saying what every node is told now."""
    body = {"arch": args.arch, "reason": args.reason}
    data = admin.call("POST", f"/bins/{args.bin}/rollout/revert", json=body)
    return Shown("\n".join(data["done"]), data)


def _duration(text: str | None) -> int | None:
    """--watch: seconds or `1h30m`, checked here as the server checks it."""
    if text is None:
        return None
    from ansible_proxy.server.rollouts.options import PolicyError, parse_duration  # pure

    try:
        return parse_duration(text, "--watch")
    except PolicyError as exc:
        raise ConfigError(str(exc)) from None


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
    if data.get("freeze"):
        frozen = data["freeze"]
        lines.append(f"  frozen until {frozen['until']}: {frozen['reason']}")
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
        if rollout.get("watch"):
            lines.append(f"  {rollout['watch']['text']}")
        if rollout.get("held"):
            lines.append(f"  held: {rollout['held']}")
        lines.extend(_ways_out(data["binName"], rollout))
        for wave in rollout["waves"]:
            limit = wave.get("failureLimit")
            bake = f", bake {wave['bakeRemaining']} s left" if wave.get("bakeRemaining") else ""
            lines.append(
                f"  {wave['name']:<11} {wave['state']:<8} {_nodes(wave['size'])}, "
                f"failures {wave['failures']}/{limit}{_tally(wave)}{bake}"
            )
            if wave.get("waitingFor"):
                lines.append(f"    waiting: {wave['waitingFor']}")
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


def _tally(wave: dict[str, Any]) -> str:
    """`, offline 1/2, not installed 3, refused 0/any, host trouble 0` for a started wave."""
    tally = wave.get("tally")
    if not tally:
        return ""

    def limit(key: str) -> str:
        return "any" if wave.get(key) is None else str(wave[key])

    return (
        f", offline {tally['offline']}/{limit('offlineLimit')}, "
        f"not installed {tally['notInstalled']}, "
        f"refused {tally['refused']}/{limit('refusedLimit')}, "
        f"host trouble {tally['hostTrouble']}"
    )


def _nodes(count: int) -> str:
    return "1 node" if count == 1 else f"{count} nodes"


def _policy(policy: dict[str, Any]) -> str:
    return str(policy.get("describe", policy))

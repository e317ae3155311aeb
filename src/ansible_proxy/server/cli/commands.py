"""Every admin command of `bin-manager`, one row each: its flags, its help and its function
(in releases.py, listings.py, credentials.py, rollouts.py), imported only when it runs.

Every command that talks to a bin-manager takes the same flags (`ADMIN_FLAGS`: --server,
--ca-bundle, --admin-token-file, --json) in the same places: after the command, and for
`nodes`, `proxies` and `rollout` after the verb as well. Every one prints for a person by
default (a table for a listing) and the server's answer as JSON with --json.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path

from ansible_proxy.commands import Arg, Command, arg, lazy
from ansible_proxy.server.cli.signing import DEFAULT_EXPIRES_DAYS, MAX_EXPIRES_DAYS

DEFAULT_SERVER = "http://127.0.0.1:8080"
ADMIN_FLAGS: tuple[Arg, ...] = (
    arg("--server", help=f"bin-manager URL (BIN_MANAGER_URL, {DEFAULT_SERVER})"),
    arg("--ca-bundle", type=Path, help="CA file for a private certificate"),
    arg(
        "--admin-token-file",
        "--token-file",
        type=Path,
        metavar="PATH",
        help="file holding an API token (bin-manager tokens create) or the admin token; wins "
        "over BIN_MANAGER_API_TOKEN, BIN_MANAGER_ADMIN_TOKEN, BIN_MANAGER_API_TOKEN_FILE and "
        "BIN_MANAGER_ADMIN_TOKEN_FILE, in that order",
    ),
    arg("--json", action="store_true", help="print the bin-manager's answer as JSON"),
)


def admin(module: str, function: str) -> Callable[[argparse.Namespace, Mapping[str, str]], int]:
    """The function of an admin command: `module.function(args, Admin)` over HTTP."""
    handler = lazy(f"ansible_proxy.server.cli.{module}", function)

    def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
        from ansible_proxy.server.cli.client import run_admin  # start-up: httpx, when run

        server = args.server or env.get("BIN_MANAGER_URL") or DEFAULT_SERVER
        return run_admin(args, env, server, handler)

    return run


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_EXPIRES_DAYS:
        raise argparse.ArgumentTypeError(f"not a number of days from 1 to 3650: {text!r}")
    return int(text)


def _sign_options(required: bool = False) -> tuple[Arg, ...]:
    """--sign-key, --expires-days, --allow-sequence-jump and --state-file: publish, pin, sign."""
    return (
        arg(
            "--sign-key",
            type=Path,
            metavar="KEY",
            required=required,
            help="OpenSSH ed25519 private key (from `bin-manager keygen`) signing the "
            "statement hosts check against their TRUSTED_KEYS",
        ),
        arg(
            "--expires-days",
            type=_days,
            default=DEFAULT_EXPIRES_DAYS,
            metavar="N",
            help=f"hosts refuse the signature after N days ({DEFAULT_EXPIRES_DAYS})",
        ),
        arg(
            "--allow-sequence-jump",
            action="store_true",
            help="sign a sequence more than 1000 above the highest this machine signed for "
            "the bin (refused without it: a server pushing the sequence up would make hosts "
            "refuse every later release; needed when a statement by a key you do not trust "
            "did that)",
        ),
        arg(
            "--state-file",
            type=Path,
            metavar="PATH",
            help="where this machine records the highest sequence it signed per server, bin "
            "and arch (default $XDG_STATE_HOME/ansible-proxy/signed.json, else "
            "~/.local/state/ansible-proxy/signed.json)",
        ),
    )


FILE = arg(
    "--file",
    type=Path,
    metavar="PATH",
    help="the release's file: its sha256 must be SHA256, and its size is signed (else "
    "the bin-manager's size is, shown before signing)",
)
NAME = arg("--name", required=True, help="bin name")
ARCH = arg("--arch", default="x86_64", help="x86_64 (default) or aarch64")


RELEASES: tuple[Command, ...] = (
    Command(
        "publish",
        "upload FILE as the latest release of a bin",
        admin("releases", "publish"),
        (arg("file", type=Path), NAME, ARCH, *_sign_options()),
    ),
    Command(
        "publish-image",
        "publish a registry image by digest (REPO@sha256:DIGEST) as the latest release",
        admin("releases", "publish_image"),
        (
            arg("reference", help="REPO@sha256:DIGEST, e.g. registry:5000/web@sha256:…"),
            NAME,
            ARCH,
        ),
        description="The release is a one-line file holding the reference; agents managing "
        "the bin as an image pull exactly that digest (docs/containers.md). An image archive "
        "(docker save, podman save) is published with `publish` like any file.",
    ),
    Command(
        "pin",
        "make an earlier release the latest",
        admin("releases", "pin"),
        (arg("bin"), arg("sha256"), arg("--arch", default="x86_64"), FILE, *_sign_options()),
        description="With --sign-key, a signed statement of kind `pin` with the bin's next "
        "sequence goes with it: hosts checking signatures accept the move back "
        "(needed when the server runs with BIN_MANAGER_REQUIRE_SIGNED=1).",
    ),
    Command("pause", "freeze a bin's rollout", admin("releases", "pause"), (arg("bin"),)),
    Command("resume", "resume a bin's rollout", admin("releases", "resume"), (arg("bin"),)),
    Command(
        "list",
        "list bins, releases BIN, nodes, or nodes BIN (who runs what of it)",
        admin("listings", "list_command"),
        (
            arg("what", choices=["bins", "releases", "nodes"]),
            arg("bin", nargs="?", help="the bin, for `list releases` and `list nodes`"),
            arg("--limit", type=int, help="nodes: one page of at most LIMIT (1-1000)"),
            arg("--after", metavar="NODE", help="nodes: the page after this name"),
            arg("--prefix", default="", help="nodes: only names starting so"),
        ),
        description="A table for people; --json for scripts (the admin API's answer). Nodes "
        "come by name: every page is followed, unless --limit asks for one page (then stderr "
        "says the --after of the next one).",
    ),
    Command(
        "delete-release",
        "delete a release nothing uses (and its artifact, unless another release shares it)",
        admin("releases", "delete_release"),
        (
            arg("bin"),
            arg("sha256"),
            arg(
                "--arch",
                help="x86_64 or aarch64; needed only when several arches have that content",
            ),
        ),
        description="Delete the release of BIN with content SHA256 and, when no other release "
        "has that content, its artifact. Refused while it is the latest of its arch, a paused "
        "rollout still answers it, a node last reported running it, or the pin in force "
        "withdrew it (publish a new release first).",
    ),
)

NODE = arg("node")
CREDENTIALS: tuple[Command, ...] = (
    Command(
        "nodes",
        "nodes and their credentials: list pending enrolments, approve, revoke, label, "
        "delete (docs/security.md)",
        verbs=(
            Command(
                "list",
                "list nodes (--pending: enrolments to approve)",
                admin("credentials", "nodes_list"),
                (arg("--pending", action="store_true", help="only enrolments to approve"),),
            ),
            Command(
                "approve",
                "make a pending enrolment the node's credential",
                admin("credentials", "approve"),
                (
                    NODE,
                    arg(
                        "--fingerprint",
                        help="refuse unless the pending token has this fingerprint (12 hex)",
                    ),
                ),
            ),
            Command(
                "reject",
                "drop pending enrolments (nothing of them is kept; a node may ask again)",
                admin("credentials", "reject"),
                (
                    arg("node", nargs="*", help="the nodes whose pending request to drop"),
                    arg("--all-pending", action="store_true", help="every pending request"),
                    arg("--older-than", metavar="DURATION", help="requests waiting longer"),
                ),
                description="Drop the pending requests of the nodes named, or --all-pending, "
                "or those waiting --older-than a duration (90s, 30m, 12h, 2d).",
            ),
            Command(
                "revoke",
                "revoke a node's credential at once",
                admin("credentials", "revoke"),
                (NODE,),
            ),
            Command(
                "show",
                "a node's credential (status, fingerprint)",
                admin("credentials", "show"),
                (NODE,),
            ),
            Command(
                "label",
                "set labels on a node that only an admin can set (rollout set --canary-label)",
                admin("credentials", "label"),
                (NODE, arg("labels", nargs="*", metavar="k=v|k-")),
                description="k=v sets a label, k- removes it; with none, prints the node's "
                "admin labels. Unlike NODE_LABELS, which a node reports itself, no node can "
                "set these.",
            ),
            Command(
                "delete",
                "remove a decommissioned node from the fleet and its rollouts; revoke its "
                "credential",
                admin("credentials", "delete"),
                (
                    NODE,
                    arg(
                        "--keep-credential",
                        action="store_true",
                        help="keep its credential: its next tick registers it again",
                    ),
                ),
                description="Removes the node, what it reported and its rollout memberships "
                "(no wave waits for it any more), and revokes its credential so that it "
                "cannot simply come back: a host installed again asks as a new pending "
                "enrolment.",
            ),
        ),
    ),
    Command(
        "proxies",
        "cluster proxies' credentials (docs/cluster.md)",
        verbs=(
            Command(
                "create",
                "create a proxy; prints its token once",
                admin("credentials", "proxies_create"),
                (arg("proxy"),),
            ),
            Command(
                "list",
                "list proxies and how many nodes each owns",
                admin("credentials", "proxies_list"),
            ),
            Command(
                "revoke",
                "revoke a proxy's token",
                admin("credentials", "proxies_revoke"),
                (arg("proxy"),),
            ),
        ),
    ),
)

_ACTIONS = {
    "promote": "start the next wave now, without waiting for the bake",
    "halt": "tell no more nodes the release; those told keep it",
    "resume": "go on after a halt (a reverted release is re-enabled, its failures forgiven)",
    "abort": "halt and revert: every node is told the previous release again",
}
ROLLOUT = Command(
    "rollout",
    "staged rollouts: set a bin's policy, show its waves, promote, halt, resume, abort",
    description="A staged rollout tells a new release to a canary wave first, then to each "
    "wave in turn once the one before stayed healthy for the bake time; a wave whose "
    "failures reach --max-failures halts it and reverts the fleet (docs/bin-manager.md).",
    verbs=(
        Command(
            "set",
            "set a bin's rollout policy (used from its next publish)",
            admin("rollouts", "set_policy"),
            (
                arg("bin"),
                arg("--arch", help="only for this arch (default: every arch)"),
                arg("--immediate", action="store_true", help="every node at once (no staging)"),
                arg("--canary", help="the first wave: N nodes or P%% of them (at least 1)"),
                arg("--waves", help="then waves up to these shares of the fleet: 25%%,100%%"),
                arg("--bake", help="seconds each wave's nodes must stay healthy"),
                arg("--max-failures", help="failed nodes that halt a wave: N, or P%% of the wave"),
                arg(
                    "--canary-label",
                    help="k=v: the nodes an admin labelled so (nodes label) are the canary; "
                    "reported:k=v: the nodes whose own NODE_LABELS say so (a node's word)",
                ),
                arg("--canary-nodes", help="a,b: these nodes are the canary (by name)"),
                arg(
                    "--max-offline",
                    help="offline nodes a wave may have and still be promoted: N (0: none), "
                    "or P%% of the wave; more, and it waits (never reverts). Default: any",
                ),
                arg(
                    "--max-refused",
                    help="nodes refusing the release (signature, held bad) a wave may have; "
                    "more, and it waits. Default: any",
                ),
                arg(
                    "--window",
                    help="when its waves may start: 'Mon-Fri 09:00-17:00 Europe/Berlin'; for "
                    "some nodes 'cluster=eu: Mon-Thu 08:00-16:00 Europe/Berlin'; ';' between",
                ),
                arg(
                    "--watch",
                    help="after the last wave, keep judging the rollout this long (3600, "
                    "90s, 10m, 1h30m; at most a week): a failure then still reverts the fleet",
                ),
            ),
            description="Example: rollout set web --canary 1 --waves 25%,100% --bake 600 "
            "--max-failures 1 --max-offline 10% --watch 1h. Shares in --waves are of the whole "
            "fleet, cumulative.",
        ),
        Command(
            "status",
            "the bin's rollouts, wave by wave",
            admin("rollouts", "status"),
            (arg("bin"),),
        ),
        *(
            Command(
                verb,
                text,
                admin("rollouts", "act"),
                (
                    arg("bin"),
                    arg("--arch", help="only this arch's rollout (default: every arch)"),
                ),
            )
            for verb, text in _ACTIONS.items()
        ),
        Command(
            "plan",
            "which nodes a publish would tell in which wave, and when at the earliest",
            admin("rollouts", "plan"),
            (
                arg("bin"),
                arg("--arch", help="only this arch (default: every arch with a release)"),
            ),
            description="For the bin's policy and fleet now, in the order a publish uses: "
            "nothing is published or changed.",
        ),
        Command(
            "revert",
            "emergency: every node back to the last completed release at once, with a reason",
            admin("rollouts", "revert"),
            (
                arg("bin"),
                arg("--arch", help="only this arch (default: every arch)"),
                arg("--reason", required=True, help="why, in one line (activity log, audit)"),
            ),
            description="Skips every bake, wave and window: each node is told the release of "
            "the last completed rollout (the one the current rollout started from) now, and "
            "the current release is marked bad.",
        ),
    ),
)


def _keygen(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from ansible_proxy.server.cli.signing import keygen  # start-up: loaded already (above)

    return keygen(args.keyfile, args.principal)


SIGNING: tuple[Command, ...] = (
    Command(
        "keygen",
        "make an ed25519 signing key; print the line for the hosts' TRUSTED_KEYS",
        _keygen,
        (
            arg("keyfile", type=Path, help="where to write the private key (KEYFILE.pub too)"),
            arg(
                "--principal",
                help="the signer's name in TRUSTED_KEYS ([A-Za-z0-9._@+-], up to 128; "
                "default user@host, else KEYFILE's name)",
            ),
        ),
        description="Runs `ssh-keygen -t ed25519` (no passphrase: add one with "
        "`ssh-keygen -p -f KEYFILE`; signing then asks for it or uses ssh-agent) and prints "
        "the allowed_signers line to add to every host's TRUSTED_KEYS file. Keep the private "
        "key on the publisher's machine, never on the bin-manager server. Needs no server.",
        shared=False,
    ),
    Command(
        "sign",
        "sign (or co-sign) a published release with --sign-key",
        admin("releases", "sign"),
        (
            arg("bin"),
            arg("sha256"),
            ARCH,
            arg("--new", action="store_true", help="sign a new statement, not co-sign"),
            FILE,
            *_sign_options(required=True),
        ),
        description="For the two-person flow (one publishes, another signs) and k-of-n "
        "thresholds: when the release already has a signed statement (a release's or a "
        "pin's) that has not expired, signs exactly that statement (a co-signature), after "
        "checking that it names BIN, ARCH and SHA256 and a sequence not below the highest "
        "this machine signed; otherwise, or with --new, a new release statement with the "
        "bin's next sequence. What is signed is shown on stderr first.",
    ),
)

FREEZE: tuple[Command, ...] = (
    Command(
        "freeze",
        "hold every rollout of the fleet: no wave starts until then (its reason shows everywhere)",
        admin("rollouts", "freeze"),
        (
            arg("--until", required=True, help="2026-12-27T00:00Z (with its zone), or 48h"),
            arg("--reason", required=True, help="why, in one line (status, bin page, audit)"),
        ),
        description="Waves already started go on baking; a publish starts its rollout, "
        "whose canary waits too. `rollout revert` and `rollout promote` are not held.",
    ),
    Command("unfreeze", "end the freeze: held waves start", admin("rollouts", "unfreeze"), ()),
)
ADMIN_COMMANDS: tuple[Command, ...] = (*RELEASES, *CREDENTIALS, *SIGNING, ROLLOUT, *FREEZE)

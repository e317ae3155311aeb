"""`ansible-proxy`: the only place that reads os.environ and flags and calls sys.exit.

Subcommands: run (one tick), check (the inspector), status, daemon, install-cron, …,
check-trusted-keys (the Ansible role's validator of TRUSTED_KEYS).
Exit codes of run: 0 all current and healthy, 1 a deploy failed, 2 configuration,
75 API unreachable (retry next tick); check: see its --help.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from ansible_proxy import __version__
from ansible_proxy.client.config import (
    CONFIG_FILE_KEY,
    DEFAULT_CONFIG_PATH,
    KEYS,
    AgentConfig,
    build_config,
    read_config_file,
)
from ansible_proxy.errors import EXIT_DEPLOY, EXIT_OK, EXIT_RETRY, AnsibleProxyError

CRASH_ENV = "ANSIBLE_PROXY_TEST_CRASH_AT"  # test-only: SIGKILL the agent at a named point
DEFAULT_CRON_PATH = Path("/etc/cron.d/ansible-proxy")

KEYS_HELP = "configuration keys (config file, environment, or the flag shown):\n" + "\n".join(
    f"  {key:<22} {meaning}" + (f" [default: {default}]" if default else "")
    for key, (default, meaning) in KEYS.items()
)
EXIT_HELP = (
    "exit codes: 0 all current and healthy (or another run holds the work), 1 a deploy "
    "failed, 2 configuration error (both: one line per failed binary on stderr), "
    "75 API, download or supervisor unreachable/slow/garbage (logged only; retry next tick)"
)


def _flag(key: str) -> str:
    return "--" + key.lower().replace("_", "-")


Extend = Callable[[Any, argparse.ArgumentParser], None]  # (subparsers, common flags)
Handler = Callable[[argparse.Namespace, Mapping[str, str]], int]


def build_parser(extend: Extend | None = None) -> argparse.ArgumentParser:
    """The agent's and the inspector's commands; `extend` adds others (`cluster`)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        help=f'config file (shell `export KEY="value"` lines, never executed); '
        f"default ${CONFIG_FILE_KEY} or {DEFAULT_CONFIG_PATH}",
    )
    common.add_argument("--log-format", choices=("text", "json"), default="text")
    common.add_argument("-v", "--verbose", action="store_true", help="also log no-op decisions")
    keys = common.add_argument_group("keys (override config file and environment)")
    for key, (_, meaning) in KEYS.items():
        keys.add_argument(_flag(key), dest=key, metavar="VALUE", help=meaning)
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="ansible-proxy",
        description="Keep this host's binaries at the version published on the bin-manager.",
        epilog=f"{KEYS_HELP}\n\n{EXIT_HELP}",
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, summary: str, description: str, exits: bool = False) -> Any:
        return sub.add_parser(
            name,
            parents=[common],
            help=summary,
            description=description,
            epilog=f"{KEYS_HELP}\n\n{EXIT_HELP}" if exits else KEYS_HELP,
            formatter_class=fmt,
        )

    command(
        "run",
        "one tick (what cron runs each minute)",
        "Keepalive, then upgrade/restart/roll back each managed binary once.",
        exits=True,
    )
    command(
        "status",
        "a table per managed binary",
        "Installed sha, latest seen, last result, rollback target and hold per binary.",
    )
    command(
        "self-test",
        "check that this agent can work on this host",
        "Read the config and the manifest, and reach the API with this node's credentials; "
        "exit 0 when all three work. A new one-file agent must pass it before it replaces "
        "the running one (docs/agent.md, Self-update).",
    )
    daemon = command(
        "daemon",
        "run a tick every --interval seconds",
        "An alternative to cron: one tick every INTERVAL seconds (+-10%% jitter).",
        exits=True,
    )
    daemon.add_argument("--interval", type=float, default=60.0)
    check = command(
        "check",
        "health-check each managed service; roll a bad one back a step",
        "Supervisor state, TCP port and Prometheus alerts per managed service; "
        "after CHECK_FAILURES unhealthy runs in a row (FATAL: at once) the previous stored "
        "version is put back. Exit: 0 all healthy (or stopped by an operator), 1 unhealthy "
        "or rolled back, 2 configuration, 3 only unknowns, 75 another check is running.",
    )
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.add_argument("--textfile", type=Path, help="write node_exporter textfile metrics")
    cron = command(
        "install-cron",
        "write /etc/cron.d/ansible-proxy",
        "Write a cron.d file that runs `ansible-proxy run` and `check` every minute as "
        "root; stderr is kept, so cron mails one line per failed binary.",
    )
    cron.add_argument("--path", type=Path, default=DEFAULT_CRON_PATH, help="cron file to write")
    held = command(
        "hold",
        "pause upgrades and rollbacks of one binary on this host",
        "Maintenance: neither `run` nor `check` touches BIN until `release BIN` "
        "(check still measures and shows it). Safe while cron runs.",
    )
    held.add_argument("bin", metavar="BIN", help="binaryName in the manifest")
    held.add_argument("--reason", default="", help="why (kept in the manifest, logged)")
    released = command("release", "end a hold", "Hand BIN back to the agent and the inspector.")
    released.add_argument("bin", metavar="BIN", help="binaryName in the manifest")
    forget = command(
        "forget",
        "lift the quarantine of a version this host marked bad",
        "Remove history[SHA] = err of BIN, so the next run installs SHA again if "
        "it is the latest. SHA: the full sha256 or at least its first 8 characters. "
        "Safe while cron runs.",
    )
    forget.add_argument("bin", metavar="BIN", help="binaryName in the manifest")
    forget.add_argument("sha", metavar="SHA", help="the quarantined sha256 (or its prefix)")
    keys_check = sub.add_parser(
        "check-trusted-keys",
        help="check a TRUSTED_KEYS file as the agent reads it",
        description="Read FILE as the agent reads TRUSTED_KEYS (docs/security.md) and print "
        "its signers and threshold; exit 2 with one line naming the line when the agent "
        "could not use it. Reads no config (the Ansible role validates with it).",
    )
    keys_check.add_argument("file", metavar="FILE", type=Path)
    if extend is not None:
        extend(sub, common)
    return parser


def load_config(args: argparse.Namespace, env: Mapping[str, str]) -> AgentConfig:
    """Defaults -> config file -> environment -> flags."""
    explicit = args.config or (Path(env[CONFIG_FILE_KEY]) if env.get(CONFIG_FILE_KEY) else None)
    file_values, warnings = read_config_file(
        explicit or DEFAULT_CONFIG_PATH, explicit is not None, env
    )
    for warning in warnings:
        print(f"ansible-proxy: warning: {warning}", file=sys.stderr)
    flags = {key: getattr(args, key) for key in KEYS if getattr(args, key, None) is not None}
    return build_config(file_values, env, flags, socket.gethostname())


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    """The agent's commands alone (`ansible_proxy.cli.main` adds `cluster`)."""
    args = build_parser().parse_args(argv)
    sys.exit(dispatch(args, os.environ))


def dispatch(
    args: argparse.Namespace, env: Mapping[str, str], others: Mapping[str, Handler] | None = None
) -> int:
    """Run one command; every error becomes one line on stderr and its exit code."""
    try:
        if others and args.command in others:
            return others[args.command](args, env)
        if args.command == "check-trusted-keys":  # before the config: none may exist yet
            from ansible_proxy.signatures import load_trusted_keys  # start-up, as below

            keys = load_trusted_keys(args.file)
            signers = ", ".join(sorted(set(keys.principals)))
            print(f"TRUSTED_KEYS {args.file}: {keys.threshold} of {signers} must sign")
            return EXIT_OK
        cfg = load_config(args, env)
        if args.config and args.command in ("run", "daemon"):
            # A self-update's self-test (a child process) reads the same config file.
            os.environ[CONFIG_FILE_KEY] = str(Path(args.config).absolute())
        # Start-up time: each command imports only what it runs (`run`, every minute on
        # every host, never loads the inspector, rich or the cron writer).
        if args.command == "run":
            from ansible_proxy.agent.runner import run_once

            # SIGTERM (a stale-lock takeover, systemd, kill) unwinds like an error: the
            # bin-manager hears `failed` for work under way, temp files are removed.
            signal.signal(signal.SIGTERM, _terminated)

            return run_once(cfg, args.log_format, args.verbose, env.get(CRASH_ENV, ""))
        if args.command == "self-test":
            from ansible_proxy.agent.runner import self_test  # start-up, as above

            print(self_test(cfg))
            return EXIT_OK
        if args.command == "status":
            from ansible_proxy.agent.status import render_status  # start-up, as above

            print(render_status(cfg), end="")
            return EXIT_OK
        if args.command == "check":
            from ansible_proxy.agent.inspector.output import check_command  # start-up

            text, code = check_command(cfg, args.json, args.textfile, args.log_format, args.verbose)
            print(text, end="")
            return code
        if args.command == "daemon":
            from ansible_proxy.agent.daemon import run_daemon  # start-up, as above

            return run_daemon(lambda: load_config(args, env), args.interval, args.log_format)
        if args.command in ("hold", "release", "forget"):
            from ansible_proxy.agent import maintenance  # start-up, as above

            if args.command == "hold":
                print(maintenance.hold(cfg, args.bin, args.reason))
            elif args.command == "release":
                print(maintenance.release(cfg, args.bin))
            else:
                print(maintenance.forget(cfg, args.bin, args.sha))
            return EXIT_OK
        from ansible_proxy.agent.daemon import install_cron  # start-up, as above

        path = install_cron(args.path, Path(sys.argv[0]).resolve(), args.config)
        print(f"wrote {path}")
        return EXIT_OK
    except AnsibleProxyError as exc:
        # Retryable problems stay quiet under cron (no mail every minute); they are logged.
        if exc.exit_code != EXIT_RETRY or sys.stderr.isatty():
            print(f"ansible-proxy: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a disk or file fault outside a tick (status, check, install-cron)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ansible-proxy: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_DEPLOY
    except KeyboardInterrupt:
        return EXIT_RETRY

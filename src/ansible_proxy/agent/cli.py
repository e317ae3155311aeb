"""`ansible-proxy`: the only place that reads os.environ and flags and calls sys.exit.

Subcommands: run (one tick), check (the inspector), status, daemon, install-cron, …,
check-trusted-keys (the Ansible role's validator of TRUSTED_KEYS), one row each of
`COMMANDS`. Each command imports only what it runs, when it runs (start-up time: `run`,
every minute on every host, never loads the inspector or the cron writer).
Exit codes of run: 0 all current and healthy, 1 a deploy failed, 2 configuration,
75 API unreachable (retry next tick); check: see its --help.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from ansible_proxy import __version__
from ansible_proxy.client.config import (
    CONFIG_FILE_KEY,
    DEFAULT_CONFIG_PATH,
    KEYS,
    AgentConfig,
    build_config,
    read_config_file,
)
from ansible_proxy.commands import Arg, Command, add_commands, arg
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
KEYS_AND_EXITS = f"{KEYS_HELP}\n\n{EXIT_HELP}"


def _flag(key: str) -> str:
    return "--" + key.lower().replace("_", "-")


# The flags of every command that reads this host's configuration.
KEYS_GROUP = "keys (override config file and environment)"
SHARED: tuple[Arg, ...] = (
    arg(
        "--config",
        type=Path,
        help=f'config file (shell `export KEY="value"` lines, never executed); '
        f"default ${CONFIG_FILE_KEY} or {DEFAULT_CONFIG_PATH}",
    ),
    arg("--log-format", choices=("text", "json"), default="text"),
    arg("-v", "--verbose", action="store_true", help="also log no-op decisions"),
    *(
        arg(_flag(key), dest=key, metavar="VALUE", help=meaning, group=KEYS_GROUP)
        for key, (_, meaning) in KEYS.items()
    ),
)
JSON = arg("--json", action="store_true", help="print JSON instead of a table")
BIN = arg("bin", metavar="BIN", help="binaryName in the manifest")


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


def _for_children(args: argparse.Namespace, env: Mapping[str, str]) -> AgentConfig:
    """The config of a command that ticks: a self-update's self-test (a child process)
    reads the same config file."""
    cfg = load_config(args, env)
    if args.config:
        os.environ[CONFIG_FILE_KEY] = str(Path(args.config).absolute())
    return cfg


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


# One function per command: (flags, environment) -> exit code. Each imports what it runs
# inside (start-up time: see the module docstring).


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    cfg = _for_children(args, env)
    from ansible_proxy.agent.runner import run_once  # start-up: see above

    # SIGTERM (a stale-lock takeover, systemd, kill) unwinds like an error: the
    # bin-manager hears `failed` for work under way, temp files are removed.
    signal.signal(signal.SIGTERM, _terminated)
    return run_once(cfg, args.log_format, args.verbose, env.get(CRASH_ENV, ""))


def _self_test(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    cfg = load_config(args, env)
    from ansible_proxy.agent.runner import self_test  # start-up: see above

    print(self_test(cfg))
    return EXIT_OK


def _status(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    cfg = load_config(args, env)
    from ansible_proxy.agent import status  # start-up: see above

    print(status.as_json(cfg) if args.json else status.render_status(cfg), end="")
    return EXIT_OK


def _check(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    cfg = load_config(args, env)
    from ansible_proxy.agent.inspector.output import check_command  # start-up: see above

    text, code = check_command(cfg, args.json, args.textfile, args.log_format, args.verbose)
    print(text, end="")
    return code


def _daemon(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    _for_children(args, env)
    from ansible_proxy.agent.daemon import run_daemon  # start-up: see above

    return run_daemon(lambda: load_config(args, env), args.interval, args.log_format)


def _install_cron(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    load_config(args, env)
    from ansible_proxy.agent.daemon import install_cron  # start-up: see above

    path = install_cron(args.path, Path(sys.argv[0]).resolve(), args.config)
    print(f"wrote {path}")
    return EXIT_OK


def _install_files(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from ansible_proxy.agent.shipped import install_files  # start-up: see above

    sets = [name for name in ("logrotate", "systemd", "bin-manager") if getattr(args, name)]
    program = Path(sys.argv[0]).resolve()
    for line in install_files(sets, args.dest_root, args.force, program):
        print(line)
    return EXIT_OK


def _hold(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    cfg = load_config(args, env)
    from ansible_proxy.agent import maintenance  # start-up: see above

    print(maintenance.hold(cfg, args.bin, args.reason))
    return EXIT_OK


def _release(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    cfg = load_config(args, env)
    from ansible_proxy.agent import maintenance  # start-up: see above

    print(maintenance.release(cfg, args.bin))
    return EXIT_OK


def _forget(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    cfg = load_config(args, env)
    from ansible_proxy.agent import maintenance  # start-up: see above

    print(maintenance.forget(cfg, args.bin, args.sha))
    return EXIT_OK


def _check_trusted_keys(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from ansible_proxy.signatures import load_trusted_keys  # start-up: see above

    keys = load_trusted_keys(args.file)  # no config: none may exist yet
    signers = ", ".join(sorted(set(keys.principals)))
    print(f"TRUSTED_KEYS {args.file}: {keys.threshold} of {signers} must sign")
    return EXIT_OK


COMMANDS: tuple[Command, ...] = (
    Command(
        "run",
        "one tick (what cron runs each minute)",
        _run,
        description="Keepalive, then upgrade/restart/roll back each managed binary once.",
        epilog=KEYS_AND_EXITS,
        cron=True,
    ),
    Command(
        "status",
        "a table per managed binary, and the last tick",
        _status,
        (JSON,),
        description="Installed sha, latest seen, last result, rollback target and hold per "
        "binary, and when the last tick ran and how it ended (a host whose cron stopped "
        "shows it).",
        epilog=KEYS_HELP,
    ),
    Command(
        "self-test",
        "check that this agent can work on this host",
        _self_test,
        description="Read the config and the manifest, and reach the API with this node's "
        "credentials; exit 0 when all three work, else one line saying why. A new one-file "
        "agent must pass it before it replaces the running one (docs/agent.md, Self-update).",
        epilog=KEYS_HELP,
    ),
    Command(
        "daemon",
        "run a tick every --interval seconds",
        _daemon,
        (arg("--interval", type=float, default=60.0),),
        description="An alternative to cron: one tick every INTERVAL seconds (+-10%% jitter).",
        epilog=KEYS_AND_EXITS,
        cron=True,
    ),
    Command(
        "check",
        "health-check each managed service; roll a bad one back a step",
        _check,
        (JSON, arg("--textfile", type=Path, help="write node_exporter textfile metrics")),
        description="Supervisor state, TCP port and Prometheus alerts per managed service; "
        "after CHECK_FAILURES unhealthy runs in a row (FATAL: at once) the previous stored "
        "version is put back. Exit: 0 all healthy (or stopped by an operator), 1 unhealthy "
        "or rolled back, 2 configuration, 3 only unknowns, 75 another check is running.",
        cron=True,
        epilog=KEYS_HELP,
    ),
    Command(
        "install-cron",
        "write /etc/cron.d/ansible-proxy",
        _install_cron,
        (arg("--path", type=Path, default=DEFAULT_CRON_PATH, help="cron file to write"),),
        description="Write a cron.d file that runs `ansible-proxy run` and `check` every "
        "minute as root; stderr is kept, so cron mails one line per failed binary.",
        epilog=KEYS_HELP,
    ),
    Command(
        "install-files",
        "write the shipped logrotate file and systemd units",
        _install_files,
        (
            arg("--logrotate", action="store_true", help="/etc/logrotate.d/ansible-proxy"),
            arg(
                "--systemd",
                action="store_true",
                help="/etc/systemd/system/ansible-proxy{,-check}.{service,timer}",
            ),
            arg(
                "--bin-manager",
                dest="bin-manager",
                action="store_true",
                help="/etc/systemd/system/bin-manager.service (the server's unit)",
            ),
            arg("--dest-root", type=Path, default=Path("/"), help="write under DIR (default /)"),
            arg("--force", action="store_true", help="replace files that differ (edited ones)"),
        ),
        description="Write the files that come inside this package (a pip, pipx or one-file "
        "install has no source tree): the agent's log rotation, and the systemd units that "
        "tick it and the inspector every minute (instead of install-cron). Each file is "
        "written atomically, mode 0644; one that differs from the shipped one is kept "
        "unless --force (nothing is written then). The agent units run this very program "
        "(ExecStart is rewritten when it is not /usr/local/bin/ansible-proxy). Then: "
        "`systemctl daemon-reload && systemctl enable --now ansible-proxy.timer "
        "ansible-proxy-check.timer`.",
        shared=False,
    ),
    Command(
        "hold",
        "pause upgrades and rollbacks of one binary on this host",
        _hold,
        (BIN, arg("--reason", default="", help="why (kept in the manifest, logged)")),
        description="Maintenance: neither `run` nor `check` touches BIN until `release BIN` "
        "(check still measures and shows it). Safe while cron runs.",
        epilog=KEYS_HELP,
    ),
    Command(
        "release",
        "end a hold",
        _release,
        (BIN,),
        description="Hand BIN back to the agent and the inspector.",
        epilog=KEYS_HELP,
    ),
    Command(
        "forget",
        "lift the quarantine of a version this host marked bad",
        _forget,
        (BIN, arg("sha", metavar="SHA", help="the quarantined sha256 (or its prefix)")),
        description="Remove history[SHA] = err of BIN, so the next run installs SHA again "
        "if it is the latest. SHA: the full sha256 or at least its first 8 characters. "
        "Safe while cron runs.",
        epilog=KEYS_HELP,
    ),
    Command(
        "check-trusted-keys",
        "check a TRUSTED_KEYS file as the agent reads it",
        _check_trusted_keys,
        (arg("file", metavar="FILE", type=Path),),
        description="Read FILE as the agent reads TRUSTED_KEYS (docs/security.md) and print "
        "its signers and threshold; exit 2 with one line naming the line when the agent "
        "could not use it. Reads no config (the Ansible role validates with it).",
        shared=False,
    ),
)


def build_parser(more: Sequence[Command] = ()) -> argparse.ArgumentParser:
    """The agent's and the inspector's commands, then `more` (`cluster`)."""
    parser = argparse.ArgumentParser(
        prog="ansible-proxy",
        description="Keep this host's binaries at the version published on the bin-manager.",
        epilog=KEYS_AND_EXITS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(
        sub, [*COMMANDS, *more], SHARED, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """The agent's commands alone (`ansible_proxy.cli.main` adds `cluster`)."""
    args = build_parser().parse_args(argv)
    sys.exit(dispatch(args, os.environ))


def dispatch(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run one command; every error becomes one line on stderr and its exit code."""
    try:
        code: int = args.func(args, env)
        return code
    except AnsibleProxyError as exc:
        # Retryable problems stay quiet under cron (no mail every minute); they are logged.
        # A command a person or a script runs (self-test, status, hold…) always says why.
        if exc.exit_code != EXIT_RETRY or not args.cron or sys.stderr.isatty():
            print(f"ansible-proxy: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a disk or file fault outside a tick (status, check, install-cron)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ansible-proxy: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_DEPLOY
    except KeyboardInterrupt:
        return EXIT_RETRY

"""`ansible-proxy cluster run | status | nginx-config`: the `CLUSTER` row that the console
script (ansible_proxy/cli.py) adds to the agent's commands.

Cluster keys come, later winning, from the config file, the environment and flags:
CLUSTER_INVENTORY (--inventory), CLUSTER_MANIFESTS (--manifests), CLUSTER_DIR (--work-dir).
Every path is made absolute against the current directory here, once: Ansible refuses a
relative inventory source or `src`, and runs playbooks from another directory.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from ansible_proxy.client.config import (
    CONFIG_FILE_KEY,
    DEFAULT_CONFIG_PATH,
    KEYS,
    build_config,
    read_config_file,
)
from ansible_proxy.client.files import write_atomic
from ansible_proxy.client.logs import Log, stderr_if_terminal
from ansible_proxy.commands import Command, arg
from ansible_proxy.errors import EXIT_OK, ConfigError
from ansible_proxy.extras import CLUSTER_MODULES, require
from ansible_proxy.table import render_table

CLUSTER_KEYS = {
    "CLUSTER_INVENTORY": ("inventory", "", "Ansible inventory file (INI or YAML)"),
    "CLUSTER_MANIFESTS": ("manifests", "", "cluster manifests file (YAML)"),
    "CLUSTER_DIR": (
        "work_dir",
        "/var/lib/ansible-proxy/cluster",
        "releases/, runs/ (ansible-runner artifacts), packages/, cluster-state.json",
    ),
}


def _keys_help() -> str:
    return "cluster keys (config file, environment, or the flag shown):\n" + "\n".join(
        f"  {key:<18} --{dest.replace('_', '-'):<12} {meaning}"
        + (f" [default: {default}]" if default else "")
        for key, (dest, default, meaning) in CLUSTER_KEYS.items()
    )


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    require("ansible-proxy cluster", "cluster", CLUSTER_MODULES, (3, 9))
    values, cluster, work_dir = _cluster_keys(args, env)
    keys = {key: values[key] for key in KEYS if key in values} | {
        k: v for k, v in env.items() if k in KEYS
    }
    flags = {key: getattr(args, key) for key in KEYS if getattr(args, key, None) is not None}
    cfg = build_config(keys, {}, flags, socket.gethostname())
    for key in ("CLUSTER_INVENTORY", "CLUSTER_MANIFESTS"):
        if not cluster[key]:
            raise ConfigError(f"{key} is not set (--{CLUSTER_KEYS[key][0]}, environment or config)")
    # Start-up time: ansible-core and ansible-runner load only for a run.
    from ansible_proxy.cluster.run import run_cluster
    from ansible_proxy.cluster.settings import ClusterSettings

    settings = ClusterSettings(
        api=cfg.api,
        download_base_url=cfg.download_base_url,
        token=cfg.token,
        ca_bundle=cfg.ca_bundle and cfg.ca_bundle.absolute(),
        insecure=cfg.insecure,
        http_timeout=cfg.http_timeout,
        lock_dir=cfg.lock_dir.absolute(),
        lock_timeout=cfg.lock_timeout,
        max_download_bytes=cfg.max_download_bytes,
        inventory=Path(cluster["CLUSTER_INVENTORY"]).absolute(),
        manifests=Path(cluster["CLUSTER_MANIFESTS"]).absolute(),
        work_dir=work_dir,
        trusted_keys=cfg.trusted_keys,
    )
    level = "debug" if args.verbose else "info"
    log = Log(cfg.log_file, args.log_format, stderr_if_terminal(), level)
    try:
        return run_cluster(settings, log)
    except Exception as exc:
        log("error", str(exc))
        raise
    finally:
        log.close()


def _status(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """`cluster status`: a file read, no Ansible needed."""
    _, _, work_dir = _cluster_keys(args, env)
    from ansible_proxy.cluster.state import load  # start-up: no ansible for `status`

    state = load(work_dir / "cluster-state.json")
    if args.json:
        print(json.dumps(state.records(), indent=2))
    else:
        print(render_status(state.rows()), end="")
    return EXIT_OK


def _cluster_keys(
    args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str], Path]:
    """The config file's values, the cluster keys (config file, environment, flags: later
    winning) and the absolute work dir."""
    values = _file_values(args, env)
    cluster = {
        key: str(getattr(args, dest, None) or env.get(key) or values.get(key) or default)
        for key, (dest, default, _) in CLUSTER_KEYS.items()
    }
    return values, cluster, Path(cluster["CLUSTER_DIR"]).absolute()


def _file_values(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, str]:
    explicit = args.config or (Path(env[CONFIG_FILE_KEY]) if env.get(CONFIG_FILE_KEY) else None)
    path = explicit or DEFAULT_CONFIG_PATH
    values, warnings = read_config_file(path, explicit is not None, env, CLUSTER_KEYS)
    for warning in warnings:
        print(f"ansible-proxy: warning: {warning}", file=sys.stderr)
    return values


def render_status(rows: list[tuple[str, str, str, str, str]]) -> str:
    """A plain-text table, one row per service and host."""
    return render_table(("SERVICE", "HOST", "RUNNING", "LAST RESULT", "ROLLBACK TO"), rows)


def _nginx_config(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    require("ansible-proxy cluster", "cluster", CLUSTER_MODULES, (3, 9))
    from ansible_proxy.cluster.nginx import (  # start-up: jinja2
        SYSTEM_CA,
        CacheConfig,
        prepare_dirs,
        render,
    )

    config = CacheConfig(
        upstream=args.upstream,
        listen=args.listen,
        cache_dir=args.cache_dir,
        max_size=args.max_size,
        standalone=args.standalone,
        auth_request=args.auth_request,
        upstream_ca=(args.upstream_ca or SYSTEM_CA).absolute(),
    )
    text = render(config)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    prepare_dirs(config.cache_dir, config.standalone)
    write_atomic(args.output, text.encode(), 0o644)
    print(f"wrote {args.output}")
    return EXIT_OK


_KEY_FLAGS = tuple(
    arg(f"--{dest.replace('_', '-')}", dest=dest, type=Path, help=meaning)
    for _, (dest, _, meaning) in CLUSTER_KEYS.items()
)
CLUSTER = Command(
    "cluster",
    "deploy tar.gz packages to a cluster with ansible-playbook",
    description="Cluster mode (docs/cluster.md): one proxy per cluster runs ansible-playbook.",
    shared=False,
    verbs=(
        Command(
            "run",
            "one cluster tick (what cron runs)",
            _run,
            _KEY_FLAGS,
            description="Keepalive per node, then deploy each service's latest package.",
            epilog=_keys_help() + "\n\nexit codes: 0 all current, 1 a deploy failed (rolled "
            "back), 2 configuration error, 75 bin-manager or a host unreachable (retry next tick)",
            cron=True,
        ),
        Command(
            "status",
            "per service and host: sha running, last result, rollback target",
            _status,
            (*_KEY_FLAGS, arg("--json", action="store_true", help="print JSON instead of a table")),
            epilog=_keys_help(),
        ),
        Command(
            "nginx-config",
            "print an nginx config that caches downloads for the cluster",
            _nginx_config,
            (
                arg("--upstream", required=True, help="bin-manager base URL (no path)"),
                arg("--listen", required=True, help="ADDR:PORT to listen on (e.g. the VIP)"),
                arg("--cache-dir", required=True, type=Path, help="absolute cache directory"),
                arg("--max-size", default="10g", help="largest cache size (default 10g)"),
                arg(
                    "--no-auth-request",
                    dest="auth_request",
                    action="store_false",
                    help="serve downloads without asking the bin-manager (only if it protects "
                    "none)",
                ),
                arg(
                    "--upstream-ca",
                    type=Path,
                    help="CA file that signed an https upstream's certificate "
                    "(default: the system's, /etc/ssl/certs/ca-certificates.crt)",
                ),
                arg(
                    "--standalone",
                    action="store_true",
                    help="a whole nginx.conf, not an http{} include",
                ),
                arg("--output", type=Path, help="write here (atomically) instead of stdout"),
            ),
            description="Render the nginx download cache (see docs/cluster.md).",
            shared=False,
        ),
    ),
)

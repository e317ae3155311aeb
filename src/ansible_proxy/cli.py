"""`ansible-proxy`: the agent's and the inspector's commands, and `ansible-proxy cluster`.

The console script's entry point. It puts agent/cli.py and cluster/cli.py together, so
that neither of those packages imports the other; the cluster's modules are imported only
when a `cluster` command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_proxy.agent import cli as agent_cli
from ansible_proxy.extras import CLUSTER_MODULES, require


def _add_cluster(sub: Any, common: argparse.ArgumentParser) -> None:
    from ansible_proxy.cluster.cli import add_cluster_parser  # start-up: see dispatch below

    add_cluster_parser(sub, common)


def _cluster(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.cluster_command != "status":  # `status` reads a file: no Ansible needed
        require("ansible-proxy cluster", "cluster", CLUSTER_MODULES, (3, 9))
    from ansible_proxy.cluster.cli import dispatch_cluster  # start-up: cluster code, on demand

    return dispatch_cluster(args, env)


def main(argv: Sequence[str] | None = None) -> None:
    args = agent_cli.build_parser(_add_cluster).parse_args(argv)
    sys.exit(agent_cli.dispatch(args, os.environ, {"cluster": _cluster}))

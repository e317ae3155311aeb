"""`ansible-proxy`: the agent's and the inspector's commands, and `ansible-proxy cluster`.

The console script's entry point. It puts agent/cli.py's commands and cluster/cli.py's
`cluster` row in one parser, so that neither of those packages imports the other; the
cluster's own modules are imported only when a `cluster` command runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ansible_proxy.agent import cli as agent_cli
from ansible_proxy.cluster.cli import CLUSTER


def main(argv: Sequence[str] | None = None) -> None:
    args = agent_cli.build_parser([CLUSTER]).parse_args(argv)
    sys.exit(agent_cli.dispatch(args, os.environ))

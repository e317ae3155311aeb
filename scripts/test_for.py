#!/usr/bin/env python3
"""`make test-for PATH…`: run the tests that cover each PATH (a file or folder under
src/ansible_proxy/), as tests/map.py lists them; docs/testing.md says more.

    scripts/test_for.py src/ansible_proxy/agent/tick.py            # unit and integration
    scripts/test_for.py --quick src/ansible_proxy/server/api       # without the slow ones
    scripts/test_for.py --list src/ansible_proxy/client            # print them, run nothing
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: tests/ is a package of the repository

from tests.map import covering  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make test-for", description="Run the tests that cover each PATH (tests/map.py)."
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a file or folder under src/")
    parser.add_argument("--quick", action="store_true", help='only the quick ones: -m "not slow"')
    parser.add_argument("--list", action="store_true", help="print the test paths, run nothing")
    parser.add_argument(
        "--workers",
        default=os.environ.get("TEST_WORKERS", "4"),
        help="pytest-xdist workers (TEST_WORKERS; 0: in this process)",
    )
    args = parser.parse_args(argv)
    try:
        tests = covering(args.paths)
    except ValueError as exc:
        parser.error(str(exc))
    if args.list:
        print("\n".join(tests))
        return 0
    command = [sys.executable, "-m", "pytest", "-n", args.workers]
    if args.quick:
        command += ["-m", "not slow"]
    command += tests
    print("+ " + " ".join(command[1:]), flush=True)
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())

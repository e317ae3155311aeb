"""`python -m bench.agent_download URL SHA256 PART`: time the agent's own download + verify.

Runs `ansible_proxy.client.download.fetch` (stream, sha256 while streaming,
write into the store's part file, no fsync: the store re-hashes) in a fresh process and
prints its seconds.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path
from typing import Any


def _agent(module: str) -> Any:
    # Looked up at run time on purpose: the agent's internals may move while it is being
    # written; a rename then fails this benchmark loudly, not the project's type check.
    return importlib.import_module(f"ansible_proxy.client.{module}")


def main(argv: list[str]) -> int:
    url, expected, part_name = argv
    part = Path(part_name)
    part.unlink(missing_ok=True)
    api, download = _agent("api"), _agent("download")
    with api.make_client([url], token="", ca_bundle=None, insecure=False, timeout=60) as client:
        start = time.perf_counter()
        download.fetch(client, url, part, expected, 2**31, lambda done, total: None)
        seconds = time.perf_counter() - start
    part.unlink()
    print(f"{seconds:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

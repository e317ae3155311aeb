"""The shipped logrotate file, and the real logrotate run on it with a private state file."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "src" / "ansible_proxy" / "share" / "logrotate" / "ansible-proxy"
DEFAULT_LOG = "/var/log/ansible-proxy.log"
LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"  # Debian: /usr/sbin


def config_for(log: Path) -> str:
    """The shipped file's text with its one stanza pointed at `log`."""
    text = SHIPPED.read_text()
    assert text.count(f"\n{DEFAULT_LOG} {{\n") == 1, text
    return text.replace(f"\n{DEFAULT_LOG} {{\n", f"\n{log} {{\n")


def logrotate(config: Path, state: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`logrotate -s STATE [flags] CONFIG`, as the daily logrotate.timer runs it, but private."""
    return subprocess.run(
        [LOGROTATE, "-s", str(state), *flags, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_log(path: Path) -> str:
    """A live or rotated log's text; `.gz` ones decompressed."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            return stream.read()
    return path.read_text(encoding="utf-8")

"""What this node says about itself: uname -m, /etc/os-release PRETTY_NAME, name, version,
and its NODE_LABELS."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from ansible_proxy.client.api import node_info

_ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def cpu_arch() -> str:
    """`uname -m`, with Debian-style names mapped to the kernel's (amd64 -> x86_64)."""
    machine = os.uname().machine
    return _ARCH_ALIASES.get(machine, machine)


def os_release(path: Path = Path("/etc/os-release")) -> str:
    """PRETTY_NAME from os-release, or "" when the file is missing or odd."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            try:
                words = shlex.split(line.partition("=")[2])
            except ValueError:
                return ""
            return words[0] if words else ""
    return ""


def collect(node_name: str, labels: Mapping[str, str] | None = None) -> dict[str, object]:
    """The nodeInfo block of the manifest and the body of POST /keepalive."""
    return node_info(cpu_arch(), os_release(), node_name, labels)

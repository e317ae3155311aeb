"""The rules for names that cross the wire: bins, sha256, arches and node names.

Pure and dependency-free (no pydantic), so the agent's no-op tick can use them cheaply;
`protocol.py` builds its field types on the same patterns. Every check is a whole-string
match: Python's `$` also matches before a trailing newline, so "app\n" must not pass.
"""

from __future__ import annotations

import re

# `^…$` for pydantic (Rust regex) and JSON Schema, where `$` is the very end; Python code
# must use `fullmatch` with them, as below.
BIN_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
# Node names land in the database, logs, URLs of the dashboard and the admin API: a host
# name's characters only (no spaces, newlines, slashes or escapes), bounded in length.
MAX_NODE_NAME = 255
NODE_NAME_PATTERN = rf"^[A-Za-z0-9._-]{{1,{MAX_NODE_NAME}}}$"
NODE_NAME_RULE = f"1-{MAX_NODE_NAME} of A-Z a-z 0-9 . _ - (not '.' or '..')"
_BIN_NAME_RE = re.compile(BIN_NAME_PATTERN)
_NODE_NAME_RE = re.compile(NODE_NAME_PATTERN)
_SHA256_RE = re.compile(SHA256_PATTERN)

ARCHES = ("x86_64", "aarch64")
_ARCH_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def is_bin_name(name: str) -> bool:
    """True when `name` may name a bin: `[A-Za-z0-9._-]{1,128}` and not `.` or `..`."""
    return _BIN_NAME_RE.fullmatch(name) is not None and name not in (".", "..")


def is_node_name(name: str) -> bool:
    """True when `name` may name a node: NODE_NAME_RULE, as a whole-string match."""
    return _NODE_NAME_RE.fullmatch(name) is not None and name not in (".", "..")


def node_name_refusal(name: str) -> str:
    """The one message for a refused node name (HTTP 422 on the server), wherever it came in."""
    shown = name if len(name) <= 80 else name[:80] + "…"
    return f"invalid node name {shown!r}: use {NODE_NAME_RULE}"


def is_sha256(value: str) -> bool:
    """True for a lower-case hex sha256 digest, and nothing around it."""
    return _SHA256_RE.fullmatch(value) is not None


def normalize_arch(arch: str) -> str | None:
    """The canonical cpu arch for `arch` (amd64 → x86_64, arm64 → aarch64), or None."""
    return _ARCH_ALIASES.get(arch.strip().lower())

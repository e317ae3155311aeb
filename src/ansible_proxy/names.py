"""The rules for names that cross the wire and touch the filesystem: bins, sha256, arches.

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
_BIN_NAME_RE = re.compile(BIN_NAME_PATTERN)
_SHA256_RE = re.compile(SHA256_PATTERN)

ARCHES = ("x86_64", "aarch64")
_ARCH_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def is_bin_name(name: str) -> bool:
    """True when `name` may name a bin: `[A-Za-z0-9._-]{1,128}` and not `.` or `..`."""
    return _BIN_NAME_RE.fullmatch(name) is not None and name not in (".", "..")


def is_sha256(value: str) -> bool:
    """True for a lower-case hex sha256 digest, and nothing around it."""
    return _SHA256_RE.fullmatch(value) is not None


def normalize_arch(arch: str) -> str | None:
    """The canonical cpu arch for `arch` (amd64 → x86_64, arm64 → aarch64), or None."""
    return _ARCH_ALIASES.get(arch.strip().lower())

"""Checks on request inputs, done before anything touches the database or the disk."""

from __future__ import annotations

from ansible_proxy.protocol import (
    ARCHES,
    is_bin_name,
    is_node_name,
    is_sha256,
    node_name_refusal,
    normalize_arch,
)
from ansible_proxy.server.problems import BadRequest, Unprocessable

DEFAULT_ARCH = "x86_64"
ARCH_NAMES = ("x86_64", "aarch64", "amd64", "arm64")
# Documentation of the bin name rule for OpenAPI; is_bin_name also refuses "." and "..".
BIN_NAME_SCHEMA_PATTERN = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"
# Stored in a BIGINT column; anything larger is a broken agent, not a long download.
MAX_PROCESSING_TIME = 10 * 365 * 24 * 3600
MAX_ARCH_QUERY = 64  # ?arch= before it is checked against ARCH_NAMES (the fast path too)


def check_bin_name(name: str) -> str:
    """`name` when it may name a bin, else BadRequest naming the rule."""
    if not is_bin_name(name):
        shown = name if len(name) <= 140 else name[:140] + "…"
        raise BadRequest(
            f"invalid bin name {shown!r}: use 1-128 of A-Z a-z 0-9 . _ - (not '.' or '..')"
        )
    return name


def check_arch(arch: str) -> str:
    """The canonical arch for `arch` (aliases amd64, arm64 accepted), else BadRequest."""
    canonical = normalize_arch(arch)
    if canonical is None:
        shown = arch[:40]
        raise BadRequest(
            f"unknown cpu arch {shown!r}: use one of {', '.join(ARCHES)} (or amd64, arm64)"
        )
    return canonical


def choose_arch(requested: str | None, node_arch: str | None) -> str:
    """The arch asked for; else the node's registered arch when known; else x86_64."""
    if requested is not None and requested.strip():
        return check_arch(requested)
    if node_arch is not None:
        known = normalize_arch(node_arch)
        if known is not None:
            return known
    return DEFAULT_ARCH


def check_sha256(value: str) -> str:
    """A lower-case hex sha256 (upper case accepted and folded), else BadRequest."""
    folded = value.strip().lower()
    if not is_sha256(folded):
        raise BadRequest(f"invalid sha256 {value[:80]!r}: expected 64 hex digits")
    return folded


def check_node_name(name: str) -> str:
    """`name` when it may name a node (names.NODE_NAME_PATTERN), else Unprocessable (422)."""
    if not is_node_name(name):
        raise Unprocessable(node_name_refusal(name))
    return name


def check_text(value: str, field: str) -> str:
    """Refuse NUL characters: no database stores them and no sane agent sends them."""
    if "\x00" in value:
        raise BadRequest(f"{field} contains a NUL character")
    return value

"""The rules for names that cross the wire: bins, sha256, arches, node names, and whether
a host name is this machine's loopback.

Pure and dependency-free (no pydantic), so the agent's no-op tick can use them cheaply;
`protocol.py` builds its field types on the same patterns. Every check is a whole-string
match: Python's `$` also matches before a trailing newline, so "app\n" must not pass.
"""

from __future__ import annotations

import ipaddress
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


# NODE_LABELS="k=v,k=v": labels choose a staged rollout's canary (`--canary-label k=v`).
MAX_LABELS = 16
_LABEL_PART_RE = re.compile(r"[A-Za-z0-9._-]{1,63}")
LABEL_RULE = f"at most {MAX_LABELS} k=v pairs, each side 1-63 of A-Z a-z 0-9 . _ -"


def label_refusal(labels: dict[str, str]) -> str | None:
    """Why these labels are refused (one phrase), or None when they are fine."""
    if len(labels) > MAX_LABELS:
        return f"{len(labels)} labels: {LABEL_RULE}"
    for key, value in labels.items():
        for part in (key, value):
            if not isinstance(part, str) or _LABEL_PART_RE.fullmatch(part) is None:
                return f"invalid label {key!s:.70}={value!s:.70}: {LABEL_RULE}"
    return None


def parse_labels(text: str) -> dict[str, str]:
    """`k=v,k=v` (spaces around items ignored) → dict; ValueError naming the bad item."""
    labels: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"label {item!r:.80} has no '=': write k=v,k=v")
        key, value = key.strip(), value.strip()
        if key in labels:
            raise ValueError(f"label {key!r:.70} is given twice")
        labels[key] = value
    problem = label_refusal(labels)
    if problem is not None:
        raise ValueError(problem)
    return labels


def format_labels(labels: dict[str, str]) -> str:
    """The stored and shown form: `k=v,k=v`, sorted by key."""
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


# Container images (docs/containers.md). A repository as docker and podman name one: an
# optional registry host[:port], then lower-case path components; no tag, no digest.
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REPOSITORY_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?/)?"
    rf"{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*"
)
MAX_IMAGE_REPOSITORY = 200
# A registry release: `REPO@sha256:DIGEST`, the one line of the file published for it.
IMAGE_REFERENCE_RE = re.compile(rf"(?:{IMAGE_REPOSITORY_RE.pattern})@sha256:[0-9a-f]{{64}}")


def is_image_reference(value: str) -> bool:
    return (
        len(value) <= MAX_IMAGE_REPOSITORY + 72 and IMAGE_REFERENCE_RE.fullmatch(value) is not None
    )


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and a loopback address (127.0.0.0/8, ::1, bracketed or not);
    any other name may resolve anywhere."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

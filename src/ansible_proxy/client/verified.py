"""The hosts' check of a signed release (docs/security.md, Signed releases), for the
agent and the cluster proxy alike, and what a host verified per bin: the `.trust` file.

The agent keeps it in STORE_DIR/<bin>/, the cluster proxy beside its packages: the
highest sequence installed (a release signed with a lower one is a replay, refused) and
the sha256 of each release verified there (the one-step revert the agent allows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ansible_proxy.client.api import Api
from ansible_proxy.client.files import write_atomic
from ansible_proxy.names import is_sha256
from ansible_proxy.signatures import (
    SignatureRefused,
    Statement,
    TrustedKeys,
    parse_statement,
    verify,
)

TRUST_FILE = ".trust"
KEPT = 64  # verified releases remembered per bin (a store keeps far fewer)


@dataclass(frozen=True)
class TrustRecord:
    """What a host verified for one bin: the highest sequence installed, and the sha256 of
    each release verified (a folder's `.trust` file, JSON)."""

    sequence: int
    verified: tuple[str, ...]


def read_record(folder: Path) -> TrustRecord:
    """The record in `folder`; an empty one when there is none (or it is unreadable)."""
    try:
        raw = json.loads((folder / TRUST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return TrustRecord(0, ())
    sequence = raw.get("sequence") if isinstance(raw, dict) else None
    verified = raw.get("verified") if isinstance(raw, dict) else None
    if not isinstance(sequence, int) or not isinstance(verified, list):
        return TrustRecord(0, ())
    shas = tuple(sha for sha in verified if isinstance(sha, str) and is_sha256(sha))
    return TrustRecord(sequence, shas)


def remember(folder: Path, sha: str, statement: Statement) -> None:
    """Record `sha` as verified in `folder` and raise its highest sequence (atomic write)."""
    record = read_record(folder)
    verified = [*[s for s in record.verified if s != sha][1 - KEPT :], sha]
    body = {"sequence": max(record.sequence, statement.sequence), "verified": verified}
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / TRUST_FILE, json.dumps(body).encode(), mode=0o644)


def trusted_statement(
    api: Api, name: str, sha: str, trusted: TrustedKeys, highest_sequence: int, now: float
) -> Statement:
    """The statement the bin-manager serves for release `sha` of `name` (this API's arch),
    checked against `trusted` and the highest sequence this host installed (its `.trust`
    record); SignatureRefused with the one reason. Its size then caps the download."""
    signed = api.signature(name, sha)
    if signed is None:
        raise SignatureRefused("not signed: the bin-manager has no signature for this release")
    return verify(
        signed.statement,
        signed.signatures,
        trusted,
        bin_name=name,
        arch=api.arch,
        sha256=sha,
        size=parse_statement(signed.statement).size,  # what is signed; the download's cap
        highest_sequence=highest_sequence,
        now=now,
    )

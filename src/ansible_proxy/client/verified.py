"""The hosts' check of a signed release (docs/security.md, Signed releases), for the
agent and the cluster proxy alike, and what a host verified per bin: the `.trust` file.

The agent keeps it in STORE_DIR/<bin>/, the cluster proxy beside its packages: the
highest sequence installed (a release signed with a lower one is a replay, refused), the
sha256 of each release verified there, and, per arch, the release an unsigned move back
went to since the last signed install (one step back is allowed, never a second).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
    """What a host verified for one bin (a folder's `.trust` file, JSON): the highest
    sequence installed, the sha256 of each release verified, and `moved_back`: arch → the
    release an unsigned move back installed, until a signed install for that arch."""

    sequence: int
    verified: tuple[str, ...]
    moved_back: dict[str, str] = field(default_factory=dict)


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
    # Added after `sequence` and `verified`, which older agents read (and ignore this).
    back = raw.get("movedBack")
    moved = back if isinstance(back, dict) else {}
    kept = {a: s for a, s in moved.items() if isinstance(a, str) and isinstance(s, str)}
    return TrustRecord(sequence, shas, kept)


def _write(folder: Path, record: TrustRecord) -> None:
    body: dict[str, object] = {"sequence": record.sequence, "verified": list(record.verified)}
    if record.moved_back:
        body["movedBack"] = record.moved_back
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / TRUST_FILE, json.dumps(body).encode(), mode=0o644)


def remember(folder: Path, sha: str, statement: Statement) -> None:
    """Record `sha` as verified in `folder` and raise its highest sequence: a signed
    install, which ends an unsigned move back for the statement's arch (atomic write)."""
    record = read_record(folder)
    verified = (*[s for s in record.verified if s != sha][1 - KEPT :], sha)
    moved = {a: s for a, s in record.moved_back.items() if a != statement.arch}
    _write(folder, TrustRecord(max(record.sequence, statement.sequence), verified, moved))


def check_install(
    api: Api, folder: Path, name: str, sha: str, trusted: TrustedKeys, now: float, own: bool
) -> Statement | None:
    """May `sha` of `name` be installed: its trusted statement (trusted_statement), or None
    for an unsigned move back. `own`: `sha` is what this host's own rollback would choose
    from what runs, and ran well there. Such a move back is allowed when `sha` was verified
    here and no other was made for this arch since a signed install; it is recorded
    before anything is switched (so a crash cannot lose it), else SignatureRefused."""
    record = read_record(folder)
    arch = api.arch
    own = own and sha in record.verified
    if own and record.moved_back.get(arch, sha) == sha:  # the first, or the same retried
        moved = {**record.moved_back, arch: sha}
        _write(folder, TrustRecord(record.sequence, record.verified, moved))
        return None
    try:
        return trusted_statement(api, name, sha, trusted, record.sequence, now)
    except SignatureRefused as exc:
        if not own:
            raise
        first = record.moved_back[arch]
        raise SignatureRefused(
            f"a second move back without a signature (one went to {first[:12]} already; "
            f"allowed again after a signed install): {exc}"
        ) from None


def trusted_statement(
    api: Api, name: str, sha: str, trusted: TrustedKeys, highest_sequence: int, now: float
) -> Statement:
    """The first statement the bin-manager serves for release `sha` of `name` (this API's
    arch), highest sequence first, that `trusted` accepts for exactly this release above
    the highest sequence this host installed (its `.trust` record); else SignatureRefused
    with the highest statement's reason. Its size then caps the download."""
    served = api.signature(name, sha)
    if not served:
        raise SignatureRefused("not signed: the bin-manager has no signature for this release")
    reasons: list[str] = []
    for signed in served:  # an untrusted statement must not hide a trusted one below it
        try:
            return verify(
                signed.statement,
                signed.signatures,
                trusted,
                bin_name=name,
                arch=api.arch,
                sha256=sha,
                size=parse_statement(signed.statement).size,  # what is signed: the cap
                highest_sequence=highest_sequence,
                now=now,
            )
        except SignatureRefused as exc:
            reasons.append(str(exc))
    others = f" ({len(reasons) - 1} other statement(s) refused too)" if len(reasons) > 1 else ""
    raise SignatureRefused(reasons[0] + others)

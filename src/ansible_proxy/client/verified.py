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
from ansible_proxy.errors import ConfigError
from ansible_proxy.names import is_sha256
from ansible_proxy.signatures import (
    SignatureRefused,
    SignatureUnchecked,
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
    """The record in `folder`; an empty one when there is none. One that cannot be read or
    is no record is a ConfigError naming it: read as empty, it would let an older signed
    release be installed again."""
    path = folder / TRUST_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return TrustRecord(0, ())
    except OSError as exc:
        raise _damaged(path, exc.strerror or str(exc)) from None
    except ValueError:  # UnicodeDecodeError too
        raise _damaged(path, "not JSON") from None
    sequence = raw.get("sequence") if isinstance(raw, dict) else None
    verified = raw.get("verified") if isinstance(raw, dict) else None
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
        raise _damaged(path, "no sequence in it")
    if not isinstance(verified, list):
        raise _damaged(path, "no list of verified releases in it")
    shas = tuple(sha for sha in verified if isinstance(sha, str) and is_sha256(sha))
    # Added after `sequence` and `verified`, which older agents read (and ignore this).
    back = raw.get("movedBack")
    moved = back if isinstance(back, dict) else {}
    kept = {a: s for a, s in moved.items() if isinstance(a, str) and isinstance(s, str)}
    return TrustRecord(sequence, shas, kept)


def _damaged(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"{path}: this host's record of the releases it verified is damaged ({why}): "
        "nothing installed; move it aside to start afresh (the host then accepts any "
        "unexpired signed release of the bin, docs/security.md)"
    )


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
        raise type(exc)(
            f"a second move back without a signature (one went to {first[:12]} already; "
            f"allowed again after a signed install): {exc}"
        ) from None


def trusted_statement(
    api: Api, name: str, sha: str, trusted: TrustedKeys, highest_sequence: int, now: float
) -> Statement:
    """The first statement the bin-manager serves for release `sha` of `name` (this API's
    arch), highest sequence first, that `trusted` accepts for exactly this release above
    the highest sequence this host installed (its `.trust` record); else SignatureRefused
    with the highest statement's reason (SignatureUnchecked with its own when this host
    could not check one: its clock, its ssh-keygen). Its size then caps the download."""
    served = api.signature(name, sha)
    server_now = api.server_time
    if not served:
        raise SignatureRefused("not signed: the bin-manager has no signature for this release")
    refusals: list[SignatureRefused] = []
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
                server_now=server_now,
            )
        except SignatureRefused as exc:
            refusals.append(exc)
    unchecked = [exc for exc in refusals if isinstance(exc, SignatureUnchecked)]
    first = (unchecked or refusals)[0]
    others = f" ({len(refusals) - 1} other statement(s) refused too)" if len(refusals) > 1 else ""
    raise type(first)(f"{first}{others}")

"""Signed releases on the server (issue 18): check a publisher's signed statement against
what the server holds, and store it — at a publish, a pin, or later (`bin-manager sign`).

The server checks what it can: the statement is canonical and names exactly this release
(bin, arch, sha256, size), has not expired, its signature is good (self-consistently; and
by a key of BIN_MANAGER_TRUSTED_KEYS when that is set), and its sequence is above every
sequence stored for the bin, by at most MAX_SEQUENCE_STEP — unless it is a statement
already stored, which another key may co-sign. Hosts check again against their own
TRUSTED_KEYS: they trust no server, and they are served every statement of a release that
has not expired (`served`), so that one signed by keys they do not trust hides nothing.

The one module of the server app that checks signatures (ansible_proxy/signatures.py,
ssh-keygen -Y).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from ansible_proxy import signatures as ssh
from ansible_proxy.errors import ConfigError
from ansible_proxy.server.db import queries
from ansible_proxy.server.db import signatures as stored
from ansible_proxy.server.db.models import Bin, Event, Release
from ansible_proxy.server.db.signatures import NewSignature
from ansible_proxy.server.problems import BadRequest, Conflict, Forbidden, Misconfigured
from ansible_proxy.server.storage.artifacts import StoredArtifact

MAX_STATEMENT = 1024  # a statement is about 230 bytes
MAX_SIGNATURE = ssh.MAX_SIGNATURE
# A new statement's sequence is at most this far above the bin's highest: whoever holds
# the admin token would need 9 * 10^12 signatures to reach MAX_SEQUENCE, after which no
# release of the bin could be signed again; a publisher whose own record runs ahead of a
# restored server (bin-manager sign) still fits in one step.
MAX_SEQUENCE_STEP = ssh.MAX_SEQUENCE_STEP
# Hosts are served every statement of a release that has not expired, and read at most 16
# signatures of one: beyond either, a 17th would hide one (so it is refused instead).
MAX_LIVE_STATEMENTS = 16
MAX_SIGNATURES = 16
UNSIGNED_PUBLISH = (
    "unsigned publish refused: BIN_MANAGER_REQUIRE_SIGNED=1 (publish with --sign-key)"
)
UNSIGNED_PIN = "unsigned pin refused: BIN_MANAGER_REQUIRE_SIGNED=1 (pin with --sign-key)"
UNSIGNED_DASHBOARD_PIN = (
    "unsigned pin refused: BIN_MANAGER_REQUIRE_SIGNED=1; a dashboard cannot sign: "
    "use bin-manager pin --sign-key"
)


@dataclass(frozen=True)
class Target:
    """The release a statement must name exactly."""

    bin_name: str
    arch: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Signed:
    """What POST …/signatures stored: the statement's facts, its key and its signature count."""

    target: Target
    sequence: int
    kind: str
    fingerprint: str
    count: int


def require_signed(required: bool, statement: str | None, refusal: str) -> None:
    """Forbidden with `refusal` when signatures are required and none was given."""
    if required and not statement:
        raise Forbidden(refusal)


def from_headers(statement: str | None, signature: str | None) -> tuple[str, str] | None:
    """The statement and signature of a publish's two headers (standard base64), or None."""
    if not statement and not signature:
        return None
    if not statement or not signature:
        raise BadRequest(f"{ssh.STATEMENT_HEADER} and {ssh.SIGNATURE_HEADER} go together")
    return _unbase64(statement, ssh.STATEMENT_HEADER), _unbase64(signature, ssh.SIGNATURE_HEADER)


def _unbase64(value: str, header: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        raise BadRequest(f"{header} is not standard base64 of ASCII text") from None


def check(
    session: Session,
    trusted_keys: Path | None,
    target: Target,
    release: Release | None,
    statement: str,
    signature: str,
    kinds: tuple[str, ...],
    now: datetime,
) -> NewSignature:
    """The signature to store for `target` (`release`: its row, None before a publish
    commits it); else one BadRequest or Conflict naming what is wrong."""
    data = statement.encode()
    try:
        parsed = ssh.parse_statement(data)
    except ssh.SignatureRefused as exc:
        raise BadRequest(f"statement refused: {exc}") from None
    facts = Target(parsed.bin, parsed.arch, parsed.sha256, parsed.size)
    if facts.bin_name != target.bin_name:
        raise BadRequest(f"the statement is for bin {facts.bin_name!r}, not {target.bin_name!r}")
    if (facts.arch, facts.sha256) != (target.arch, target.sha256):
        raise BadRequest(
            f"the statement is for {facts.arch} {facts.sha256}, "
            f"not this {target.arch} release {target.sha256}"
        )
    if facts.size != target.size:
        raise BadRequest(
            f"the statement says {facts.size} bytes, the release has {target.size} bytes"
        )
    if parsed.kind not in kinds:
        raise BadRequest(f"the statement's kind is {parsed.kind!r}; {' or '.join(kinds)} wanted")
    unix_now = now.replace(tzinfo=UTC).timestamp()
    if parsed.expires <= unix_now:
        raise BadRequest("the statement has expired: sign a new one")
    if parsed.sequence > ssh.MAX_SEQUENCE:
        raise BadRequest(
            f"sequence {parsed.sequence} is above {ssh.MAX_SEQUENCE}, the largest a statement "
            "may carry"
        )
    found = _statements(session, target.bin_name, release)
    existing = next((s for s in found if s.statement == statement), None)
    if existing is None:
        _check_sequence(session, target.bin_name, parsed.sequence)
    try:
        fingerprint = ssh.key_fingerprint(data, signature)
    except ssh.SignatureRefused as exc:
        raise BadRequest(f"signature refused: {exc}") from None
    if trusted_keys is not None and not ssh.signers(data, [signature], _trusted(trusted_keys)):
        raise BadRequest(
            f"signature refused: {fingerprint} is not signed by a key in BIN_MANAGER_TRUSTED_KEYS"
        )
    if existing is None:
        _check_room(found, target, unix_now)
    elif len(existing.fingerprints) >= MAX_SIGNATURES and fingerprint not in existing.fingerprints:
        raise Conflict(
            f"the statement already has {MAX_SIGNATURES} signatures, as many as hosts read: "
            "no more are taken"
        )
    return NewSignature(statement, parsed.kind, parsed.sequence, fingerprint, signature)


def check_upload(
    session: Session,
    trusted_keys: Path | None,
    name: str,
    arch: str,
    artifact: StoredArtifact,
    signed: tuple[str, str] | None,
    now: datetime,
) -> NewSignature | None:
    """A publish's signed statement (from_headers), checked against the upload; None for
    an unsigned publish. A release published again may have its statement co-signed."""
    if signed is None:
        return None
    known = queries.find_bin(session, name)
    again = queries.find_release(session, known, artifact.sha256, arch) if known else None
    target = Target(name, arch, artifact.sha256, artifact.size)
    return check(session, trusted_keys, target, again, *signed, ("release",), now)


def check_pin(
    session: Session,
    trusted_keys: Path | None,
    bin_: Bin,
    arch: str,
    sha256: str,
    statement: str | None,
    signature: str | None,
    now: datetime,
) -> NewSignature | None:
    """A pin's signed statement (kind `pin`, for exactly that release), checked; None for
    an unsigned pin."""
    if statement is None and signature is None:
        return None
    if not statement or not signature:
        raise BadRequest("statement and signature go together")
    release = queries.require_release(session, bin_, sha256, arch)
    target = Target(bin_.name, arch, release.sha256, release.size)
    return check(session, trusted_keys, target, release, statement, signature, ("pin",), now)


def _statements(
    session: Session, bin_name: str, release: Release | None
) -> list[stored.StoredStatement]:
    """The release's stored statements (none before a first publish), read under the bin's
    row lock: two signatures of one bin checked at once are checked one after the other."""
    bin_ = queries.find_bin(session, bin_name)
    if bin_ is not None:
        stored.lock_bin(session, bin_.id)
    return stored.statements_of(session, release.id) if release is not None else []


def _check_sequence(session: Session, bin_name: str, sequence: int) -> None:
    """A new statement's sequence: above the bin's highest, by at most MAX_SEQUENCE_STEP."""
    bin_ = queries.find_bin(session, bin_name)
    highest = stored.max_sequence(session, bin_.id) if bin_ is not None else 0
    if sequence <= highest:
        raise Conflict(
            f"sequence {sequence} is not above {highest}, the highest signed for {bin_name}: "
            f"sign a new statement with sequence {highest + 1}"
        )
    if sequence > highest + MAX_SEQUENCE_STEP:
        raise BadRequest(
            f"sequence {sequence} is more than {MAX_SEQUENCE_STEP} above {highest}, the highest "
            f"signed for {bin_name}: sign a new statement with sequence {highest + 1}"
        )


def _check_room(found: list[stored.StoredStatement], target: Target, now: float) -> None:
    """Conflict when the release already has MAX_LIVE_STATEMENTS statements not expired."""
    if sum(expires(one.statement) > now for one in found) >= MAX_LIVE_STATEMENTS:
        raise Conflict(
            f"release {target.sha256} of {target.bin_name} ({target.arch}) already has "
            f"{MAX_LIVE_STATEMENTS} signed statements that have not expired, as many as hosts "
            "are served: a new one is taken once one expires (or publish a new release)"
        )


def expires(statement: str) -> int:
    """A stored statement's expiry (Unix time); 0 for one that no longer parses."""
    try:
        return ssh.parse_statement(statement.encode()).expires
    except ssh.SignatureRefused:
        return 0


def served(found: list[stored.StoredStatement], now: float) -> list[stored.StoredStatement]:
    """What hosts are given of a release's statements (`found`, highest sequence first):
    every one that has not expired (at most MAX_LIVE_STATEMENTS are stored), or, when all
    have, the highest alone, so that a host can say it expired."""
    live = [one for one in found if expires(one.statement) > now]
    return live[:MAX_LIVE_STATEMENTS] or found[:1]


def _trusted(path: Path) -> ssh.TrustedKeys:
    try:
        return ssh.load_trusted_keys(path)
    except ConfigError as exc:
        raise Misconfigured(f"BIN_MANAGER_TRUSTED_KEYS: {exc}") from None


def check_trusted_keys(path: Path | None) -> None:
    """ConfigError at start when BIN_MANAGER_TRUSTED_KEYS is set but unusable."""
    if path is not None:
        ssh.load_trusted_keys(path)


def record(
    session: Session, bin_name: str, release: Release, new: NewSignature, now: datetime
) -> int:
    """Store `new` (idempotent per key and statement) with its activity event; the number
    of signatures of that statement. The caller commits."""
    if stored.add_signature(session, release, new, now):
        detail = f"{new.kind} sequence {new.sequence} signed by {new.fingerprint}"
        session.add(
            Event(
                at=now,
                kind="signed",
                bin_name=bin_name,
                arch=release.arch,
                sha256=release.sha256,
                detail=detail,
            )
        )
    return stored.count_signatures(session, release.id, new.statement)


def sign(
    session: Session,
    trusted_keys: Path | None,
    name: str,
    statement: str,
    signature: str,
    now: datetime,
) -> Signed:
    """POST …/signatures: sign (or co-sign) a release already published, and commit."""
    bin_ = queries.require_bin(session, name)
    try:
        parsed = ssh.parse_statement(statement.encode())
    except ssh.SignatureRefused as exc:
        raise BadRequest(f"statement refused: {exc}") from None
    if parsed.bin != name:
        raise BadRequest(f"the statement is for bin {parsed.bin!r}, not {name!r}")
    release = queries.require_release(session, bin_, parsed.sha256, parsed.arch)
    target = Target(name, release.arch, release.sha256, release.size)
    new = check(session, trusted_keys, target, release, statement, signature, ssh.KINDS, now)
    count = record(session, name, release, new, now)
    session.commit()
    return Signed(target, new.sequence, new.kind, new.fingerprint, count)

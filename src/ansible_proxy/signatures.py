"""Signed releases (docs/security.md): the signed statement — a wire contract shared by the
hosts that check it and the bin-manager and its CLI that store and make it — and its
OpenSSH signatures (`ssh-keygen -Y sign | verify`): no cryptography of ours and no
dependency; operators' existing ed25519 keys sign, and hosts need only openssh-client,
which Debian and Ubuntu hosts have.

A statement is canonical JSON (sorted keys, no spaces) naming exactly one release:
`{"arch", "bin", "expires", "kind", "sequence", "sha256", "size", "v": 1}`; `kind` is
`release`, or `pin` for a fleet-wide move back (a signed downgrade, with a new sequence).
It is signed in the namespace `ansible-proxy-release`, so a signature made for anything
else never counts.

TRUSTED_KEYS is an OpenSSH allowed_signers file (`principal ssh-ed25519 AAAA… [comment]`,
one key a line; `namespaces="ansible-proxy-release"` may be given) with an optional
`# threshold: K` line: K signatures by distinct principals are needed (default 1).
Revoking a key is removing its line: its signatures stop counting at once. Lines end at
`\n` only, as OpenSSH reads them; a line holding any other control or separator
character is refused, so no line can hide a second one (a threshold) from either reader.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ansible_proxy.errors import ConfigError, DeployError
from ansible_proxy.names import is_bin_name, is_sha256

NAMESPACE = "ansible-proxy-release"
KINDS = ("release", "pin")
SSH_KEYGEN = "ssh-keygen"
MAX_SIGNATURE = 8192
# The largest sequence a statement may carry: every JSON reader holds it exactly (2^53 - 1).
MAX_SEQUENCE = 2**53 - 1
# A new statement's sequence is at most this far above the highest one before it: the
# bin-manager refuses more, and a publisher's CLI will not sign more above its own record
# (a server pushing the sequence up would make hosts refuse every later release).
MAX_SEQUENCE_STEP = 1000
_THRESHOLD_RE = re.compile(r"#[ \t]*threshold[ \t]*:[ \t]*([0-9]{1,4})")
_NEAR_THRESHOLD_RE = re.compile(r"#[ \t]*threshold", re.IGNORECASE)
# principal [options] ssh-ed25519 AAAA… [comment]: OpenSSH's fields, split on space and tab;
# options are comma-separated `name="value"` (namespaces, valid-after, valid-before).
_KEY_LINE_RE = re.compile(
    r"(?P<principal>[A-Za-z0-9._@+-]{1,128})[ \t]+"
    r"(?:(?:namespaces|valid-after|valid-before)=\"[^\"]*\""
    r"(?:,(?:namespaces|valid-after|valid-before)=\"[^\"]*\")*[ \t]+)?"
    r"ssh-ed25519[ \t]+(?P<key>[A-Za-z0-9+/]+={0,2})(?:[ \t]+.*)?"
)
# A key line may hold spaces and tabs, and nothing else of these categories: a line break
# OpenSSH does not see (\r, \x0b, \x1e, \x85, U+2028…), an invisible or bidi character.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Zs"})
_PRINCIPAL_RE = re.compile(r"[A-Za-z0-9._@+-]{1,128}")
# A signed publish carries its statement and signature in these headers, standard base64.
STATEMENT_HEADER = "X-Ansible-Proxy-Statement"
SIGNATURE_HEADER = "X-Ansible-Proxy-Signature"
_TIMEOUT = 10.0
_NO_KEYGEN = "TRUSTED_KEYS needs ssh-keygen (openssh-client) on PATH"
_FINGERPRINT_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
_ED25519_PREFIX = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20"


class SignatureRefused(DeployError):
    """A release whose signatures do not make it trusted; the message says why."""


class SignatureUnchecked(SignatureRefused):
    """Not installed for a reason of this host's, not the release's: ssh-keygen did not
    answer, or the signature expired by this host's clock only (the bin-manager's says it
    has not). Refused all the same, and asked again next tick."""


def require_keygen() -> None:
    """ConfigError when ssh-keygen is not on PATH: checked at start, before any release."""
    if shutil.which(SSH_KEYGEN) is None:
        raise ConfigError(_NO_KEYGEN)


def is_principal(name: str) -> bool:
    """True when `name` may stand first on a TRUSTED_KEYS line: 1-128 of A-Z a-z 0-9 . _ @ + -."""
    return _PRINCIPAL_RE.fullmatch(name) is not None


@dataclass(frozen=True)
class Statement:
    """What a publisher signs: one release of one bin for one arch, until `expires`."""

    kind: str
    bin: str
    arch: str
    sha256: str
    size: int
    sequence: int
    expires: int  # Unix time

    def to_bytes(self) -> bytes:
        body = {
            "v": 1,
            "kind": self.kind,
            "bin": self.bin,
            "arch": self.arch,
            "sha256": self.sha256,
            "size": self.size,
            "sequence": self.sequence,
            "expires": self.expires,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def parse_statement(data: bytes) -> Statement:
    """The statement in `data`; SignatureRefused naming what is wrong with it."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SignatureRefused("the signed statement is not JSON") from None
    if not isinstance(raw, dict) or raw.get("v") != 1:
        raise SignatureRefused("the signed statement is not a version 1 statement")
    fields = {"kind": str, "bin": str, "arch": str, "sha256": str, "size": int,
              "sequence": int, "expires": int}  # fmt: skip
    for name, kind in fields.items():
        value = raw.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SignatureRefused(f"the signed statement's {name} is missing or malformed")
    statement = Statement(**{name: raw[name] for name in fields})
    if statement.kind not in KINDS or not is_bin_name(statement.bin):
        raise SignatureRefused("the signed statement's kind or bin is not valid")
    if not is_sha256(statement.sha256) or statement.size < 0 or statement.sequence < 0:
        raise SignatureRefused("the signed statement's sha256, size or sequence is not valid")
    if Statement(**{name: raw[name] for name in fields}).to_bytes() != data:
        raise SignatureRefused("the signed statement is not in canonical form")
    return statement


@dataclass(frozen=True)
class TrustedKeys:
    """TRUSTED_KEYS: the allowed_signers file, its principals and the threshold, and the
    bytes they were read from: ssh-keygen is given these, never the file read again."""

    path: Path
    principals: tuple[str, ...]
    threshold: int
    data: bytes

    def __repr__(self) -> str:
        return f"TrustedKeys({str(self.path)!r}, {self.principals!r}, {self.threshold})"


def load_trusted_keys(path: Path) -> TrustedKeys:
    """Read TRUSTED_KEYS; ConfigError naming the file (and line) when it is unusable."""
    try:
        data = path.read_bytes()  # once: what is parsed here is what ssh-keygen is given
        text = data.decode("utf-8")  # not read_text: it turns \r into \n
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"TRUSTED_KEYS {path}: cannot read: {exc}") from None
    principals: list[str] = []
    threshold: int | None = None
    for number, line in enumerate(text.split("\n"), 1):  # as OpenSSH: \n ends a line
        where = f"TRUSTED_KEYS {path}:{number}"
        odd = next((c for c in line if _is_refused(c)), None)
        if odd is not None:
            raise ConfigError(
                f"{where}: holds U+{ord(odd):04X} ({unicodedata.name(odd, 'a control character')})"
                ": only spaces and tabs may separate fields, and only \\n may end a line"
            )
        stripped = line.strip(" \t")
        match = _THRESHOLD_RE.fullmatch(stripped)
        if match:
            if threshold is not None:
                raise ConfigError(f"{where}: a second `# threshold:` line (give one)")
            threshold = int(match.group(1))
            continue
        if _NEAR_THRESHOLD_RE.match(stripped):
            raise ConfigError(f"{where}: expected `# threshold: K` (K a number)")
        if not stripped or stripped.startswith("#"):
            continue
        principal = _key_line_principal(stripped)
        if principal is None:
            raise ConfigError(
                f'{where}: expected `principal [namespaces="…"] ssh-ed25519 AAAA… [comment]`'
            )
        principals.append(principal)
    if not principals:
        raise ConfigError(f"TRUSTED_KEYS {path}: no key in it")
    distinct = len(set(principals))
    wanted = 1 if threshold is None else threshold
    if not 1 <= wanted <= distinct:
        raise ConfigError(
            f"TRUSTED_KEYS {path}: threshold {wanted} but {distinct} distinct signers "
            "(two keys under one principal count once)"
        )
    return TrustedKeys(path, tuple(principals), wanted, data)


def _is_refused(char: str) -> bool:
    return char not in " \t" and unicodedata.category(char) in _REFUSED_CATEGORIES


def _key_line_principal(line: str) -> str | None:
    """The principal of an allowed_signers line holding a whole ed25519 public key."""
    match = _KEY_LINE_RE.fullmatch(line)
    if match is None:
        return None
    try:
        blob = base64.b64decode(match.group("key"), validate=True)
    except ValueError:
        return None
    # The key's wire form: string "ssh-ed25519", string of the 32-byte public key.
    if not blob.startswith(_ED25519_PREFIX) or len(blob) != len(_ED25519_PREFIX) + 32:
        return None
    return match.group("principal")


def _keygen(args: Sequence[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            [SSH_KEYGEN, *args], input=data, capture_output=True, timeout=_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise ConfigError(_NO_KEYGEN) from None
    except subprocess.TimeoutExpired:
        raise SignatureUnchecked(f"ssh-keygen did not answer within {_TIMEOUT:g} s") from None


def sign(statement: Statement, key: Path) -> str:
    """An armored SSH signature of `statement` made with the private key at `key`."""
    result = _keygen(["-Y", "sign", "-q", "-f", str(key), "-n", NAMESPACE], statement.to_bytes())
    if result.returncode != 0 or b"BEGIN SSH SIGNATURE" not in result.stdout:
        why = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigError(f"cannot sign with {key}: {why[-1] if why else 'ssh-keygen failed'}")
    return result.stdout.decode("ascii")


def key_fingerprint(data: bytes, signature: str) -> str:
    """The SHA256 fingerprint of the key that made `signature` over `data` in our namespace,
    checked for self-consistency only (no trusted keys: the server's check at upload);
    SignatureRefused when it is not a good signature of `data`."""
    if len(signature) > MAX_SIGNATURE or "BEGIN SSH SIGNATURE" not in signature:
        raise SignatureRefused("the signature is not an armored SSH signature")
    with tempfile.TemporaryDirectory(prefix="ansible-proxy-sig-") as tmp:
        sig = Path(tmp) / "statement.sig"
        sig.write_text(signature, encoding="ascii", errors="replace")
        checked = _keygen(["-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)], data)
    match = _FINGERPRINT_RE.search(checked.stdout.decode("utf-8", "replace"))
    if checked.returncode != 0 or match is None:
        raise SignatureRefused("the signature does not verify over this statement")
    return match.group(0)


def signers(data: bytes, signatures: Sequence[str], trusted: TrustedKeys) -> set[str]:
    """The distinct trusted principals with a good signature of `data` among `signatures`."""
    good: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="ansible-proxy-sig-") as tmp:
        allowed = Path(tmp) / "allowed_signers"  # the bytes parsed, not the file again
        allowed.write_bytes(trusted.data)
        for index, signature in enumerate(signatures[:16]):
            if len(signature) > MAX_SIGNATURE or "BEGIN SSH SIGNATURE" not in signature:
                continue
            sig = Path(tmp) / f"{index}.sig"
            sig.write_text(signature, encoding="ascii", errors="replace")
            os.chmod(sig, 0o600)
            found = _keygen(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed)], b"")
            for principal in found.stdout.decode("utf-8", "replace").split():
                if principal in trusted.principals and principal not in good:
                    checked = _keygen(
                        ["-Y", "verify", "-f", str(allowed), "-I", principal,
                         "-n", NAMESPACE, "-s", str(sig)],
                        data,
                    )  # fmt: skip
                    if checked.returncode == 0:
                        good.add(principal)
    return good


def verify(
    data: bytes,
    signatures: Sequence[str],
    trusted: TrustedKeys,
    *,
    bin_name: str,
    arch: str,
    sha256: str,
    size: int,
    highest_sequence: int,
    now: float,
    server_now: float | None = None,
) -> Statement:
    """The statement, when it is signed by enough trusted keys for exactly this release,
    has not expired and does not go back in sequence; else SignatureRefused with the one
    reason. A pin (a move back to an older release) is a new statement with a new, higher
    sequence: an old pin replayed goes back in sequence and is refused like any other.
    `server_now`: the bin-manager's clock (its Date), to tell a skewed host clock apart."""
    statement = parse_statement(data)
    wanted = (bin_name, arch, sha256, size)
    if (statement.bin, statement.arch, statement.sha256, statement.size) != wanted:
        raise SignatureRefused(
            f"the signature is for {statement.bin} {statement.arch} {statement.sha256[:12]} "
            f"({statement.size} bytes), not this release"
        )
    if statement.expires <= now:
        if server_now is not None and statement.expires > server_now:
            raise SignatureUnchecked(
                f"the signature has expired by this host's clock, not by the bin-manager's "
                f"(this host is {now - server_now:.0f} s ahead): set this host's clock (NTP)"
            )
        raise SignatureRefused("the signature has expired: the publisher must sign it again")
    if statement.sequence < highest_sequence:  # a replayed older statement, a pin's too
        raise SignatureRefused(
            f"sequence {statement.sequence} is below {highest_sequence}, the highest this host "
            "installed: an older statement replayed (a downgrade needs a newly signed pin)"
        )
    good = signers(data, signatures, trusted)
    if len(good) < trusted.threshold:
        shown = ", ".join(sorted(good)) or "none"
        raise SignatureRefused(
            f"{len(good)} of the {trusted.threshold} trusted signatures needed (good: {shown})"
        )
    return statement

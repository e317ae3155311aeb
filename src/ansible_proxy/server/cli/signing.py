"""`bin-manager keygen`, `sign`, and the signing of `publish --sign-key` and
`pin --sign-key` (signed releases, issue 18): the publisher's side, on the publisher's
machine. The private key never leaves it; the server gets a statement and its signature.

The publisher trusts no answer of the server (issue 25): every statement signed here names
the release the publisher named — bin, arch and sha256 from the arguments or the file, the
size from the file when there is one — with a sequence above the highest this machine
signed (sequences.py), and is shown on stderr before it is signed. A statement offered for
co-signing is checked against the same, and refused whole when anything differs.

Statements and signatures are ansible_proxy/signatures.py's (ssh-keygen -Y sign); keygen runs
ssh-keygen itself, here and nowhere else in the server's CLI.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansible_proxy import signatures as ssh
from ansible_proxy.errors import ConfigError
from ansible_proxy.names import is_sha256, normalize_arch

DEFAULT_EXPIRES_DAYS = 365
MAX_EXPIRES_DAYS = 3650
_DAY = 86400
NOTHING_SIGNED = "nothing was signed"


def keygen(keyfile: Path, principal: str | None) -> int:
    """Make the key pair; the TRUSTED_KEYS line on stdout, where the key is on stderr."""
    name = principal or _default_principal(keyfile)
    if not ssh.is_principal(name):
        raise ConfigError(f"invalid principal {name[:80]!r}: use 1-128 of A-Z a-z 0-9 . _ @ + -")
    if keyfile.exists() or keyfile.with_name(keyfile.name + ".pub").exists():
        raise ConfigError(f"{keyfile} already exists: choose another file (nothing was changed)")
    argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(keyfile)]
    try:
        made = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise ConfigError("keygen needs ssh-keygen (openssh-client) on PATH") from None
    if made.returncode != 0:
        why = made.stderr.strip().splitlines()
        raise ConfigError(f"ssh-keygen failed: {why[-1] if why else made.returncode}")
    words = keyfile.with_name(keyfile.name + ".pub").read_text(encoding="ascii").split()
    print(f'{name} namespaces="{ssh.NAMESPACE}" {words[0]} {words[1]}')
    print(
        f"private key: {keyfile} — keep it off the bin-manager server; add a passphrase "
        f"with `ssh-keygen -p -f {keyfile}`. Add the line above to every host's TRUSTED_KEYS.",
        file=sys.stderr,
    )
    return 0


def _default_principal(keyfile: Path) -> str:
    try:
        name = f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        name = ""
    return name if ssh.is_principal(name) else keyfile.stem


def file_facts(path: Path) -> tuple[str, int]:
    """The sha256 and size of the file to publish, computed here."""
    try:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        return digest, path.stat().st_size
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def statement(
    kind: str, name: str, arch: str, sha256: str, size: int, sequence: int, days: int
) -> ssh.Statement:
    """A statement valid for `days` from now."""
    expires = int(time.time()) + days * _DAY
    return ssh.Statement(kind, name, arch, sha256, size, sequence, expires)


def check_key(key: Path) -> None:
    """ConfigError when the --sign-key file is missing."""
    if not key.is_file():
        raise ConfigError(f"--sign-key {key}: no such key file (make one with bin-manager keygen)")


def sign(text: ssh.Statement, key: Path) -> str:
    """The armored signature of `text` by the private key at `key`; ConfigError if missing."""
    check_key(key)
    return ssh.sign(text, key)


def upload_headers(text: ssh.Statement, signature: str) -> dict[str, str]:
    """The two headers of a signed publish (standard base64)."""
    return {
        ssh.STATEMENT_HEADER: base64.b64encode(text.to_bytes()).decode("ascii"),
        ssh.SIGNATURE_HEADER: base64.b64encode(signature.encode("ascii")).decode("ascii"),
    }


@dataclass(frozen=True)
class Named:
    """The release the publisher names: bin, arch and sha256 from the arguments or the file;
    the size from the file, or None when there is none (the server's is then signed)."""

    bin: str
    arch: str
    sha256: str
    size: int | None

    def __str__(self) -> str:
        return f"{self.bin} {self.arch} {self.sha256}"


def named(bin_name: str, arch: str, sha256: str | None, file: Path | None) -> Named:
    """What the arguments name; ConfigError for a bad arch or sha256, or a file that is not
    that content."""
    canonical = normalize_arch(arch)
    if canonical is None:
        raise ConfigError(f"unknown cpu arch {arch[:40]!r}: use x86_64 or aarch64")
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not is_sha256(sha256):
            raise ConfigError(f"invalid sha256 {sha256[:80]!r}: expected 64 hex digits")
    if file is None:
        if sha256 is None:
            raise ConfigError("no sha256 and no file")
        return Named(bin_name, canonical, sha256, None)
    digest, size = file_facts(file)
    if sha256 is not None and digest != sha256:
        raise ConfigError(f"{file} has sha256 {digest}, not {sha256}: {NOTHING_SIGNED}")
    return Named(bin_name, canonical, digest, size)


def checked_size(release: Named, answer: Mapping[str, Any]) -> int:
    """The size to sign, from the server's GET …/signing `answer` about `release`, which
    must be about exactly that release (and that size, when the file gave one)."""
    about = (answer.get("binName"), answer.get("arch"), answer.get("sha256"))
    if about != (release.bin, release.arch, release.sha256):
        shown = " ".join(str(value)[:64] for value in about)
        raise ConfigError(
            f"the bin-manager answered about {shown}, not {release} that you named: "
            f"{NOTHING_SIGNED}"
        )
    size = answer.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ConfigError(f"the bin-manager gave no size for {release}: {NOTHING_SIGNED}")
    if release.size is not None and size != release.size:
        raise ConfigError(
            f"the bin-manager says {release} has {size} bytes, the file has {release.size}: "
            f"{NOTHING_SIGNED}"
        )
    return size


_JUMP = (
    "when a statement by a key you do not trust pushed the bin's sequence up (the "
    "bin-manager's signing answer lists its statements), sign above it knowingly with "
    "--allow-sequence-jump"
)


def new_statement(
    kind: str,
    release: Named,
    size: int,
    offered: object,
    highest: int,
    days: int,
    allow_jump: bool = False,
) -> ssh.Statement:
    """A new statement of `release`: its sequence the server's `offered` next one, but never
    at or below `highest`, the highest this machine signed (then one above it), nor more
    than MAX_SEQUENCE_STEP above it unless `allow_jump` (--allow-sequence-jump)."""
    if not isinstance(offered, int) or isinstance(offered, bool):
        raise ConfigError(f"the bin-manager gave no next sequence: {NOTHING_SIGNED}")
    sequence = max(offered, highest + 1)
    if highest and offered > highest + ssh.MAX_SEQUENCE_STEP and not allow_jump:
        raise ConfigError(
            f"the bin-manager offered sequence {offered}, more than {ssh.MAX_SEQUENCE_STEP} "
            f"above {highest}, the highest this machine signed for {release.bin} "
            f"{release.arch} (a statement that high would make hosts refuse every later "
            f"release): {NOTHING_SIGNED}; {_JUMP}"
        )
    if offered <= highest:
        print(
            f"bin-manager: the bin-manager offered sequence {offered}, not above {highest}, "
            f"the highest this machine signed for {release.bin} {release.arch}: "
            f"signing {sequence} instead",
            file=sys.stderr,
        )
    if sequence > ssh.MAX_SEQUENCE:
        raise ConfigError(
            f"sequence {sequence} is above {ssh.MAX_SEQUENCE}, the largest a statement may "
            f"carry: {NOTHING_SIGNED}"
        )
    return statement(kind, release.bin, release.arch, release.sha256, size, sequence, days)


def offered_statement(answer: Mapping[str, Any], release: Named) -> ssh.Statement | None:
    """The statement the server offers for co-signing (GET …/signing's `statement`),
    when it is one of exactly `release`; None when it offers none."""
    text = answer.get("statement")
    if text is None:
        return None
    try:
        offered = ssh.parse_statement(text.encode() if isinstance(text, str) else b"")
    except ssh.SignatureRefused as exc:
        raise ConfigError(
            f"the bin-manager offers a bad statement ({exc}): {NOTHING_SIGNED}"
        ) from None
    facts = (offered.bin, offered.arch, offered.sha256)
    if facts != (release.bin, release.arch, release.sha256):
        raise ConfigError(
            f"the bin-manager offers a statement of {offered.bin} {offered.arch} "
            f"{offered.sha256} ({offered.size} bytes) to co-sign, not of {release} that you "
            f"named: {NOTHING_SIGNED}"
        )
    if release.size is not None and offered.size != release.size:
        raise ConfigError(
            f"the bin-manager offers a statement of {offered.size} bytes, the file has "
            f"{release.size}: {NOTHING_SIGNED}"
        )
    return offered


def to_cosign(
    offered: ssh.Statement | None, highest: int, new: bool, allow_jump: bool = False
) -> ssh.Statement | None:
    """`offered` (offered_statement's) when `sign` should co-sign it: not expired, unless
    --new; refused when its sequence is below `highest`, the highest this machine signed
    (or more than MAX_SEQUENCE_STEP above it, unless `allow_jump`), or it expires later
    than a publisher may sign for."""
    if new or offered is None or offered.expires <= time.time():
        return None
    if offered.sequence < highest:
        raise ConfigError(
            f"the statement offered to co-sign has sequence {offered.sequence}, below {highest}, "
            f"the highest this machine signed for {offered.bin} {offered.arch}: an older "
            f"statement? {NOTHING_SIGNED} (sign a new one with --new)"
        )
    if highest and offered.sequence > highest + ssh.MAX_SEQUENCE_STEP and not allow_jump:
        raise ConfigError(
            f"the statement offered to co-sign has sequence {offered.sequence}, more than "
            f"{ssh.MAX_SEQUENCE_STEP} above {highest}, the highest this machine signed for "
            f"{offered.bin} {offered.arch}: {NOTHING_SIGNED}; {_JUMP}"
        )
    if offered.sequence > ssh.MAX_SEQUENCE:
        raise ConfigError(
            f"the statement offered to co-sign has sequence {offered.sequence}, above "
            f"{ssh.MAX_SEQUENCE}: {NOTHING_SIGNED}"
        )
    if offered.expires > time.time() + (MAX_EXPIRES_DAYS + 1) * _DAY:
        raise ConfigError(
            f"the statement offered to co-sign expires more than {MAX_EXPIRES_DAYS} days from "
            f"now: {NOTHING_SIGNED}"
        )
    return offered


def show(text: ssh.Statement, how: str, size_from: str) -> None:
    """Print on stderr exactly what is about to be signed."""
    expires = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(text.expires))
    print(
        f"bin-manager: signing {how}:\n"
        f"  kind      {text.kind}\n"
        f"  bin       {text.bin}\n"
        f"  arch      {text.arch}\n"
        f"  sha256    {text.sha256}\n"
        f"  size      {text.size} bytes ({size_from})\n"
        f"  sequence  {text.sequence}\n"
        f"  expires   {expires}",
        file=sys.stderr,
    )

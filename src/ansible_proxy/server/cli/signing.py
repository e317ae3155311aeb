"""`bin-manager keygen`, `sign`, and the signing of `publish --sign-key` and
`pin --sign-key` (signed releases, issue 18): the publisher's side, on the publisher's
machine. The private key never leaves it; the server gets a statement and its signature.

Statements and signatures are ansible_proxy/signatures.py's (ssh-keygen -Y sign); keygen runs
ssh-keygen itself, here and nowhere else in the server's CLI.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ansible_proxy import signatures as ssh
from ansible_proxy.errors import ConfigError

DEFAULT_EXPIRES_DAYS = 365
_DAY = 86400


def add_sign_options(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """--sign-key and --expires-days, for publish, pin and sign."""
    parser.add_argument(
        "--sign-key",
        type=Path,
        metavar="KEY",
        required=required,
        help="OpenSSH ed25519 private key (from `bin-manager keygen`) signing the statement "
        "hosts check against their TRUSTED_KEYS",
    )
    parser.add_argument(
        "--expires-days",
        type=_days,
        default=DEFAULT_EXPIRES_DAYS,
        metavar="N",
        help=f"hosts refuse the signature after N days ({DEFAULT_EXPIRES_DAYS})",
    )


def add_subcommands(sub: Any, common: argparse.ArgumentParser) -> None:
    """`keygen` (no server needed) and `sign`."""
    keygen = sub.add_parser(
        "keygen",
        help="make an ed25519 signing key; print the line for the hosts' TRUSTED_KEYS",
        description="Runs `ssh-keygen -t ed25519` (no passphrase: add one with "
        "`ssh-keygen -p -f KEYFILE`; signing then asks for it or uses ssh-agent) and prints "
        "the allowed_signers line to add to every host's TRUSTED_KEYS file. Keep the private "
        "key on the publisher's machine, never on the bin-manager server. Needs no server.",
    )
    keygen.add_argument(
        "keyfile", type=Path, help="where to write the private key (KEYFILE.pub too)"
    )
    keygen.add_argument(
        "--principal",
        help="the signer's name in TRUSTED_KEYS ([A-Za-z0-9._@+-], up to 128; "
        "default user@host, else KEYFILE's name)",
    )
    sign = sub.add_parser(
        "sign",
        parents=[common],
        help="sign (or co-sign) a published release with --sign-key",
        description="For the two-person flow (one publishes, another signs) and k-of-n "
        "thresholds: when the release already has a signed statement (a release's or a "
        "pin's) that has not expired, signs exactly that statement (a co-signature); "
        "otherwise, or with --new, a new release statement with the bin's next sequence.",
    )
    sign.add_argument("bin")
    sign.add_argument("sha256")
    sign.add_argument("--arch", default="x86_64", help="x86_64 (default) or aarch64")
    sign.add_argument("--new", action="store_true", help="sign a new statement, not co-sign")
    add_sign_options(sign, required=True)


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 3650:
        raise argparse.ArgumentTypeError(f"not a number of days from 1 to 3650: {text!r}")
    return int(text)


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


def sign(text: ssh.Statement, key: Path) -> str:
    """The armored signature of `text` by the private key at `key`; ConfigError if missing."""
    if not key.is_file():
        raise ConfigError(f"--sign-key {key}: no such key file (make one with bin-manager keygen)")
    return ssh.sign(text, key)


def upload_headers(text: ssh.Statement, signature: str) -> dict[str, str]:
    """The two headers of a signed publish (standard base64)."""
    return {
        ssh.STATEMENT_HEADER: base64.b64encode(text.to_bytes()).decode("ascii"),
        ssh.SIGNATURE_HEADER: base64.b64encode(signature.encode("ascii")).decode("ascii"),
    }


def to_cosign(signing: dict[str, Any], new: bool) -> ssh.Statement | None:
    """The release's current statement when `sign` should co-sign it: its newest statement
    (a release's, or a pin's: a threshold's second signer of a pin), not expired, unless --new."""
    text = signing.get("statement")
    if new or not isinstance(text, str):
        return None
    try:
        current = ssh.parse_statement(text.encode())
    except ssh.SignatureRefused:
        return None
    if current.expires <= time.time():
        return None
    return current

"""`bin-manager publish | publish-image | pin | pause | resume | delete-release | sign`:
what changes a bin's releases, over the admin API (client.py's `Admin`). What is signed
is signer.py's and signing.py's.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Iterator
from typing import Any

from ansible_proxy.errors import ConfigError
from ansible_proxy.names import is_image_reference, is_sha256
from ansible_proxy.server.cli import client
from ansible_proxy.server.cli.client import Admin, Shown
from ansible_proxy.server.cli.signer import Signer

CHUNK = 1024 * 1024


def _signer(args: argparse.Namespace, admin: Admin) -> Signer:
    return Signer(admin.http, admin.base, admin.server, args, client.call)


def publish(args: argparse.Namespace, admin: Admin) -> Shown:
    """Upload the file, hashing what is sent; its sha256, once the server says the same."""
    extra = _signer(args, admin).publish_headers() if args.sign_key else {}
    path, name, arch = args.file, args.name, args.arch
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    sent = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(CHUNK):
                sent.update(block)
                yield block

    data = admin.call(
        "POST",
        f"/bins/{name}/releases",
        params={"arch": arch},
        content=chunks(),
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
            **extra,
        },
    )
    sha = _same_sha(data, sent.hexdigest())
    ended = data.get("supersedes") if isinstance(data, dict) else None
    if isinstance(ended, dict) and isinstance(ended.get("text"), str):
        # stdout is the sha256 alone (scripts read it); what the publish ended goes to stderr
        print(f"{name} ({arch}): this publish {ended['text'][:600]}", file=sys.stderr)
    return Shown(sha, data)


def publish_image(args: argparse.Namespace, admin: Admin) -> Shown:
    """A one-line release holding the image reference by digest."""
    if not is_image_reference(args.reference):
        raise ConfigError(
            f"{args.reference[:120]!r} is not an image reference by digest: "
            "expected REPO@sha256:<64 hex digits> (a tag is not enough)"
        )
    content = f"{args.reference}\n".encode()
    data = admin.call(
        "POST",
        f"/bins/{args.name}/releases",
        params={"arch": args.arch},
        content=content,
        headers={"Content-Type": "application/octet-stream"},
    )
    return Shown(_same_sha(data, hashlib.sha256(content).hexdigest()), data)


def pin(args: argparse.Namespace, admin: Admin) -> Shown:
    body = {"sha256": args.sha256, "arch": args.arch}
    if args.sign_key:
        body |= _signer(args, admin).pin_body()
    else:
        _warn_unsigned_pin(admin, args.bin)
    data = admin.call("POST", f"/bins/{args.bin}/pin", json=body)
    return Shown(f"{args.bin} {args.arch}: latest is now {args.sha256}", data)


def pause(args: argparse.Namespace, admin: Admin) -> Shown:
    return Shown(f"{args.bin}: paused", admin.call("POST", f"/bins/{args.bin}/pause"))


def resume(args: argparse.Namespace, admin: Admin) -> Shown:
    return Shown(f"{args.bin}: resumed", admin.call("POST", f"/bins/{args.bin}/resume"))


def sign(args: argparse.Namespace, admin: Admin) -> Shown:
    line, done = _signer(args, admin).sign()
    return Shown(line, done)


# What the server did with the file of a deleted release, as the CLI says it.
_ARTIFACT = {
    "removed": "its artifact was removed from the store",
    "shared": "its artifact stays: another release has the same content",
    "missing": "its artifact was already missing from the store",
    "left": "its artifact could not be removed (the server's log says why); it is never served",
}


def delete_release(args: argparse.Namespace, admin: Admin) -> Shown:
    wanted = args.sha256.strip().lower()
    if not is_sha256(wanted):  # it becomes part of the URL: nothing but a digest
        raise ConfigError(f"invalid sha256 {args.sha256[:80]!r}: expected 64 hex digits")
    params = {"arch": args.arch} if args.arch else {}
    data = admin.call("DELETE", f"/bins/{args.bin}/releases/{wanted}", params=params)
    artifact = _ARTIFACT.get(data.get("artifact"), f"artifact: {data.get('artifact')}")
    text = f"deleted {data['binName']} {data['arch']} release {data['sha256']}; {artifact}"
    return Shown(text, data)


def _warn_unsigned_pin(admin: Admin, name: str) -> None:
    """A pin without --sign-key of a bin whose releases are signed: hosts with TRUSTED_KEYS
    take it only as one step back to the release each ran before (docs/security.md)."""
    data = admin.call("GET", f"/bins/{name}/sequence")
    if isinstance(data, dict) and int(data.get("nextSequence") or 1) > 1:
        print(
            f"warning: {name}'s releases are signed: a host with TRUSTED_KEYS takes an unsigned "
            "pin only as one step back to the release it ran before, and refuses it otherwise; "
            "sign it with --sign-key KEY",
            file=sys.stderr,
        )


def _same_sha(data: Any, sent: str) -> str:
    """`sent`, the sha256 of what was uploaded, once the server's answer says the same: the
    sha256 printed is what a colleague signs (`bin-manager sign`), so none of the server's."""
    stored = data.get("sha256") if isinstance(data, dict) else None
    if stored != sent:
        raise ConfigError(
            f"the bin-manager says it stored sha256 {str(stored)[:64]}, but what was sent has "
            f"sha256 {sent}: an answer rewritten on the way, or a server that does not store "
            "what it gets"
        )
    return sent

"""The admin subcommands of `bin-manager` (publish, pin, pause, resume, list,
delete-release, sign) over HTTP; what is signed is signer.py's and signing.py's, and what
this machine signed is sequences.py's record.

Owns the httpx client of the admin CLI; server errors become our error tree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import ssl
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from ansible_proxy.errors import ConfigError, RetryableError
from ansible_proxy.names import is_image_reference
from ansible_proxy.protocol import API_PREFIX, is_bin_name, is_sha256
from ansible_proxy.server.cli import credentials, paging, rollouts, sequences, signing
from ansible_proxy.server.cli import signer as signer_of
from ansible_proxy.server.cli.admin_token import WHERE_TO_SET, admin_token

DEFAULT_SERVER = "http://127.0.0.1:8080"
CHUNK = 1024 * 1024


def add_subcommands(sub: Any) -> None:
    """Add publish, pin, pause, resume, list and delete-release to the `bin-manager` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help=f"bin-manager URL (BIN_MANAGER_URL, {DEFAULT_SERVER})")
    common.add_argument("--ca-bundle", type=Path, help="CA file for a private certificate")
    common.add_argument(
        "--admin-token-file",
        type=Path,
        metavar="PATH",
        help="file holding the admin token; wins over BIN_MANAGER_ADMIN_TOKEN, which wins "
        "over BIN_MANAGER_ADMIN_TOKEN_FILE",
    )

    publish = sub.add_parser(
        "publish",
        parents=[common],
        help="upload FILE as the latest release of a bin",
    )
    publish.add_argument("file", type=Path)
    publish.add_argument("--name", required=True, help="bin name")
    publish.add_argument("--arch", default="x86_64", help="x86_64 (default) or aarch64")
    signing.add_sign_options(publish)

    image = sub.add_parser(
        "publish-image",
        parents=[common],
        help="publish a registry image by digest (REPO@sha256:DIGEST) as the latest release",
        description="The release is a one-line file holding the reference; agents managing "
        "the bin as an image pull exactly that digest (docs/containers.md). An image archive "
        "(docker save, podman save) is published with `publish` like any file.",
    )
    image.add_argument("reference", help="REPO@sha256:DIGEST, e.g. registry:5000/web@sha256:…")
    image.add_argument("--name", required=True, help="bin name")
    image.add_argument("--arch", default="x86_64", help="x86_64 (default) or aarch64")

    pin = sub.add_parser(
        "pin",
        parents=[common],
        help="make an earlier release the latest",
        description="With --sign-key, a signed statement of kind `pin` with the bin's next "
        "sequence goes with it: hosts checking signatures accept the move back "
        "(needed when the server runs with BIN_MANAGER_REQUIRE_SIGNED=1).",
    )
    pin.add_argument("bin")
    pin.add_argument("sha256")
    pin.add_argument("--arch", default="x86_64")
    signing.add_file_option(pin)
    signing.add_sign_options(pin)

    for verb, text in (("pause", "freeze a bin's rollout"), ("resume", "resume a bin's rollout")):
        sub.add_parser(verb, parents=[common], help=text).add_argument("bin")

    listing = sub.add_parser(
        "list",
        parents=[common],
        help="list bins, releases BIN, nodes, or nodes BIN (who runs what of it)",
        description="Nodes come by name: every page is followed, unless --limit asks for "
        "one page (then stderr says the --after of the next one).",
    )
    listing.add_argument("what", choices=["bins", "releases", "nodes"])
    listing.add_argument("bin", nargs="?", help="the bin, for `list releases` and `list nodes`")
    listing.add_argument("--limit", type=int, help="nodes: one page of at most LIMIT (1-1000)")
    listing.add_argument("--after", metavar="NODE", help="nodes: the page after this name")
    listing.add_argument("--prefix", default="", help="nodes: only names starting so")

    delete = sub.add_parser(
        "delete-release",
        parents=[common],
        help="delete a release nothing uses (and its artifact, unless another release shares it)",
        description="Delete the release of BIN with content SHA256 and, when no other release "
        "has that content, its artifact. Refused while it is the latest of its arch, a paused "
        "rollout still answers it, a node last reported running it, or the pin in force "
        "withdrew it (publish a new release first).",
    )
    credentials.add_subcommands(sub, common)
    signing.add_subcommands(sub, common)
    rollouts.add_subcommands(sub, common)
    delete.add_argument("bin")
    delete.add_argument("sha256")
    delete.add_argument(
        "--arch", help="x86_64 or aarch64; needed only when several arches have that content"
    )


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run one admin subcommand; print its result on stdout."""
    server = (args.server or env.get("BIN_MANAGER_URL") or DEFAULT_SERVER).rstrip("/")
    server = server.removesuffix(API_PREFIX)
    token = admin_token(args.admin_token_file, env)
    if token is not None and not (token.isascii() and token.isprintable()):
        raise ConfigError(
            "the admin token has characters an HTTP header cannot carry "
            "(non-ASCII or control characters)"
        )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verify = _trust(args.ca_bundle)
    base = f"{server}{API_PREFIX}/admin"
    name = getattr(args, "name", None) or getattr(args, "bin", None)
    if name is not None and not is_bin_name(name):
        raise ConfigError(
            f"invalid bin name {name!r}: use 1-128 of A-Z a-z 0-9 . _ - (not . or ..)"
        )
    if getattr(args, "sign_key", None):
        signing.check_key(args.sign_key)  # before anything is asked or sent
        args.state_file = args.state_file or sequences.default_path(env)
    with httpx.Client(headers=headers, verify=verify, timeout=httpx.Timeout(30, read=600)) as http:
        signer = signer_of.Signer(http, base, server, args, _call)
        if args.command == "publish":
            extra = signer.publish_headers() if args.sign_key else {}
            print(_publish(http, base, args.file, args.name, args.arch, extra))
        elif args.command == "sign":
            print(signer.sign())
        elif args.command == "publish-image":
            if not is_image_reference(args.reference):
                raise ConfigError(
                    f"{args.reference[:120]!r} is not an image reference by digest: "
                    "expected REPO@sha256:<64 hex digits> (a tag is not enough)"
                )
            content = f"{args.reference}\n".encode()
            data = _upload(http, base, content, args.name, args.arch)
            print(_same_sha(data, hashlib.sha256(content).hexdigest()))
        elif args.command == "pin":
            body = {"sha256": args.sha256, "arch": args.arch}
            if args.sign_key:
                body |= signer.pin_body()
            else:
                _warn_unsigned_pin(http, base, args.bin)
            _call(http, "POST", f"{base}/bins/{args.bin}/pin", json=body)
            print(f"{args.bin} {args.arch}: latest is now {args.sha256}")
        elif args.command in ("pause", "resume"):
            _call(http, "POST", f"{base}/bins/{args.bin}/{args.command}")
            print(f"{args.bin}: {'paused' if args.command == 'pause' else 'resumed'}")
        elif args.command in ("nodes", "proxies"):
            credentials.run(args, http, base, _call)
        elif args.command == "rollout":
            rollouts.run(args, http, base, _call)
        elif args.command == "delete-release":
            print(_delete_release(http, base, args.bin, args.sha256, args.arch))
        elif args.what == "nodes":
            print(json.dumps(_list_nodes(http, base, args), indent=2))
        else:
            print(json.dumps(_list(http, base, args.what, args.bin), indent=2))
    return 0


def _trust(ca_bundle: Path | None) -> ssl.SSLContext:
    """System CAs, or only `ca_bundle` for a private certificate; verification stays on."""
    try:
        if ca_bundle is None:
            return ssl.create_default_context()
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load --ca-bundle {ca_bundle}: {exc}") from None


def _publish(
    http: httpx.Client, base: str, path: Path, name: str, arch: str, extra: dict[str, str]
) -> str:
    """Upload the file, hashing what is sent; its sha256, once the server says the same."""
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

    data = _call(
        http,
        "POST",
        f"{base}/bins/{name}/releases",
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
    return sha


def _warn_unsigned_pin(http: httpx.Client, base: str, name: str) -> None:
    """A pin without --sign-key of a bin whose releases are signed: hosts with TRUSTED_KEYS
    take it only as one step back to the release each ran before (docs/security.md)."""
    data = _call(http, "GET", f"{base}/bins/{name}/sequence")
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


def _upload(http: httpx.Client, base: str, content: bytes, name: str, arch: str) -> Any:
    return _call(
        http,
        "POST",
        f"{base}/bins/{name}/releases",
        params={"arch": arch},
        content=content,
        headers={"Content-Type": "application/octet-stream"},
    )


def _list(http: httpx.Client, base: str, what: str, bin_name: str | None) -> Any:
    if what == "releases":
        if not bin_name:
            raise ConfigError("`list releases` needs the bin name")
        return _call(http, "GET", f"{base}/bins/{bin_name}/releases")
    return _call(http, "GET", f"{base}/{what}")


def _list_nodes(http: httpx.Client, base: str, args: argparse.Namespace) -> Any:
    """Every node (page after page), or the one page --limit/--after ask for."""
    url = f"{base}/bins/{args.bin}/nodes" if args.bin else f"{base}/nodes"
    params = {"prefix": args.prefix} if args.prefix else {}
    if args.limit is None and args.after is None:
        return paging.every_page(_call, http, url, params)
    params["limit"] = str(args.limit or paging.PAGE_SIZE)
    if args.after:
        params["after"] = args.after
    body = _answer(http, "GET", url, params=params)
    if body.get("next"):
        print(f"more: --after {body['next']}", file=sys.stderr)
    return body.get("data")


# What the server did with the file of a deleted release, as the CLI says it.
_ARTIFACT = {
    "removed": "its artifact was removed from the store",
    "shared": "its artifact stays: another release has the same content",
    "missing": "its artifact was already missing from the store",
    "left": "its artifact could not be removed (the server's log says why); it is never served",
}


def _delete_release(
    http: httpx.Client, base: str, bin_name: str, sha256: str, arch: str | None
) -> str:
    wanted = sha256.strip().lower()
    if not is_sha256(wanted):  # it becomes part of the URL: nothing but a digest
        raise ConfigError(f"invalid sha256 {sha256[:80]!r}: expected 64 hex digits")
    params = {"arch": arch} if arch else {}
    data = _call(http, "DELETE", f"{base}/bins/{bin_name}/releases/{wanted}", params=params)
    artifact = _ARTIFACT.get(data.get("artifact"), f"artifact: {data.get('artifact')}")
    return f"deleted {data['binName']} {data['arch']} release {data['sha256']}; {artifact}"


def _call(http: httpx.Client, method: str, url: str, **kwargs: Any) -> Any:
    """The `data` of a success envelope; our errors otherwise."""
    return _answer(http, method, url, **kwargs).get("data")


def _answer(http: httpx.Client, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    """The whole success envelope (`data`, and `next` on paged listings); our errors otherwise."""
    try:
        response = http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise RetryableError(f"cannot reach the bin-manager at {url}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    if response.status_code >= 500:
        raise RetryableError(f"bin-manager answered {response.status_code}: {message or ''}")
    if response.status_code == 401:
        raise ConfigError(
            f"the bin-manager refused the admin token (401): {WHERE_TO_SET} to the server's "
            f"admin token (the server said: {message or 'unauthorized'})"
        )
    if response.status_code >= 400 or not isinstance(body, dict) or body.get("code") != 0:
        raise ConfigError(f"bin-manager refused ({response.status_code}): {message or body}")
    return body

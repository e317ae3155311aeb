"""The HTTP client of `bin-manager`'s admin commands: one `Admin` per command, handed to
the command's function (commands.py's table says which), whose `Shown` answer is printed
for a person, or as JSON with `--json`.

Owns the httpx client of the admin CLI; server errors become our error tree.
"""

from __future__ import annotations

import argparse
import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from ansible_proxy.errors import ConfigError, RetryableError
from ansible_proxy.names import is_bin_name
from ansible_proxy.server.cli import sequences, signing
from ansible_proxy.server.cli.admin_token import API_WHERE_TO_SET, WHERE_TO_SET, api_token

# protocol.API_PREFIX, here without loading pydantic (start-up time; a unit test checks it)
API_PREFIX = "/api/v1"


class Shown(NamedTuple):
    """What a command prints: `text` for a person, `data` (the server's answer, as JSON)
    with --json."""

    text: str
    data: Any


@dataclass(frozen=True)
class Admin:
    """The admin API of one bin-manager (`server`), through one HTTP client."""

    http: httpx.Client
    server: str  # scheme://host:port, no path
    base: str  # the admin API: {server}/api/v1/admin

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The `data` of a success envelope of `method` `path` (under `base`)."""
        return call(self.http, method, f"{self.base}{path}", **kwargs)

    def answer(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The whole success envelope (`data`, and `next` on paged listings)."""
        return answer(self.http, method, f"{self.base}{path}", **kwargs)


Handler = Callable[[argparse.Namespace, Admin], Shown]


def run_admin(
    args: argparse.Namespace, env: Mapping[str, str], server: str, handler: Handler
) -> int:
    """Run one admin command against the bin-manager at `server`: check what can be
    checked here, then `handler` over HTTP; its answer on stdout (a person's text, or
    --json's JSON)."""
    server = server.rstrip("/").removesuffix(API_PREFIX)
    token = api_token(args.admin_token_file, env)
    if token is not None and not (token.isascii() and token.isprintable()):
        raise ConfigError(
            "the token has characters an HTTP header cannot carry (non-ASCII or control characters)"
        )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verify = _trust(args.ca_bundle)
    name = getattr(args, "name", None) or getattr(args, "bin", None)
    if name is not None and not is_bin_name(name):
        raise ConfigError(
            f"invalid bin name {name!r}: use 1-128 of A-Z a-z 0-9 . _ - (not . or ..)"
        )
    if getattr(args, "sign_key", None):
        signing.check_key(args.sign_key)  # before anything is asked or sent
        args.state_file = args.state_file or sequences.default_path(env)
    timeout = httpx.Timeout(30, read=600)
    with httpx.Client(headers=headers, verify=verify, timeout=timeout) as http:
        shown = handler(args, Admin(http, server, f"{server}{API_PREFIX}/admin"))
    if args.json:
        print(json.dumps(shown.data, indent=2))
    elif shown.text:
        print(shown.text.rstrip("\n"))
    return 0


def _trust(ca_bundle: Path | None) -> ssl.SSLContext:
    """System CAs, or only `ca_bundle` for a private certificate; verification stays on."""
    try:
        if ca_bundle is None:
            return ssl.create_default_context()
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load --ca-bundle {ca_bundle}: {exc}") from None


def call(http: httpx.Client, method: str, url: str, **kwargs: Any) -> Any:
    """The `data` of a success envelope; our errors otherwise."""
    return answer(http, method, url, **kwargs).get("data")


def answer(http: httpx.Client, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
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
            f"admin token, or {API_WHERE_TO_SET} to an API token (the server said: "
            f"{message or 'unauthorized'})"
        )
    if response.status_code >= 400 or not isinstance(body, dict) or body.get("code") != 0:
        raise ConfigError(f"bin-manager refused ({response.status_code}): {message or body}")
    return body

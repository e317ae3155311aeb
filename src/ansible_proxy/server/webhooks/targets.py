"""The webhook receivers: BIN_MANAGER_WEBHOOK_URLS parsed, each URL with an optional secret.

An entry is `URL` or `URL#secret=SECRET`, entries separated by commas, spaces or newlines.
The fragment is never sent over HTTP, so the secret rides there and is split off here:
neither the stored URL, nor a log line, nor an error message ever holds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ansible_proxy.errors import ConfigError

MAX_TARGETS = 16
MAX_URL = 2048  # webhook_deliveries.url
_SEPARATORS = re.compile(r"[\s,]+")
_FRAGMENT = "secret="  # the fragment key, not a secret


@dataclass(frozen=True)
class WebhookTarget:
    """One receiver: where to POST, and the HMAC key to sign the body with (or None)."""

    url: str
    secret: str | None = field(default=None, repr=False)


def parse_targets(text: str | None) -> tuple[WebhookTarget, ...]:
    """The receivers `text` names, in its order; ConfigError naming the first bad entry."""
    entries = [entry for entry in _SEPARATORS.split(text or "") if entry]
    if len(entries) > MAX_TARGETS:
        raise ConfigError(
            f"BIN_MANAGER_WEBHOOK_URLS: {len(entries)} entries, at most {MAX_TARGETS}"
        )
    targets: list[WebhookTarget] = []
    for number, entry in enumerate(entries, start=1):
        target = _parse_entry(number, entry)
        for earlier, seen in enumerate(targets, start=1):
            if seen.url == target.url:  # one row per receiver, and one secret to look up
                raise _bad(number, target.url, f"repeats entry {earlier}")
        targets.append(target)
    return tuple(targets)


def redact(url: str) -> str:
    """`url` fit for a log line: scheme and host only (Slack-style URLs hold a token)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return url.partition("#")[0][:40]
    host = parts.netloc.rpartition("@")[2]
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{rest}"


def _parse_entry(number: int, entry: str) -> WebhookTarget:
    url, hashed, fragment = entry.partition("#")
    secret: str | None = None
    if hashed:
        if not fragment.startswith(_FRAGMENT) or fragment == _FRAGMENT:
            raise _bad(number, url, "has a fragment other than #secret=SECRET")
        secret = fragment[len(_FRAGMENT) :]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _bad(number, url, "is not an http:// or https:// URL")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise _bad(number, url, "has an invalid port") from None
    if not parts.hostname:
        raise _bad(number, url, "has no host")
    if parts.username is not None or parts.password is not None:
        raise _bad(number, url, "holds a user or password: give a #secret=SECRET instead")
    if len(url) > MAX_URL:
        raise _bad(number, url, f"is longer than {MAX_URL} characters")
    return WebhookTarget(url=url, secret=secret)


def _bad(number: int, url: str, reason: str) -> ConfigError:
    return ConfigError(f"BIN_MANAGER_WEBHOOK_URLS: entry {number} ({redact(url)}) {reason}")

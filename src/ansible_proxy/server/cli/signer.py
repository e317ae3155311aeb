"""The publisher's signing conversations with the bin-manager (issue 25): the headers of
`publish --sign-key`, the body of `pin --sign-key`, and `sign`. Each asks the server only
for facts signing.py checks against what the publisher named, signs under the lock of this
machine's record (sequences.py), and records the sequence before the signature leaves.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import httpx

from ansible_proxy import signatures as ssh
from ansible_proxy.errors import ConfigError
from ansible_proxy.server.cli import sequences, signing

Call = Callable[..., Any]  # client._call: the `data` of a success envelope
COSIGNATURE = "a co-signature of the statement the bin-manager holds"
NEW = "a new statement"


class Signer:
    """One publisher's signing against one bin-manager (`server`; its admin API at `base`)."""

    def __init__(
        self, http: httpx.Client, base: str, server: str, args: argparse.Namespace, call: Call
    ) -> None:
        self.http, self.base, self.server, self.args, self.call = http, base, server, args, call

    def publish_headers(self) -> dict[str, str]:
        """The headers of a signed publish: a release statement of the file, made here."""
        args = self.args
        release = signing.named(args.name, args.arch, None, args.file)
        size = release.size if release.size is not None else 0  # the file's: always there
        offered = self.call(self.http, "GET", f"{self.base}/bins/{args.name}/sequence")
        nxt = offered.get("nextSequence") if isinstance(offered, dict) else None
        with sequences.opened(args.state_file, self.server) as record:
            highest = record.highest(release.bin, release.arch)
            text = signing.new_statement(
                "release", release, size, nxt, highest, args.expires_days, args.allow_sequence_jump
            )
            signature = self._signed(text, NEW, release, record)
        return signing.upload_headers(text, signature)

    def pin_body(self) -> dict[str, str]:
        """A pin statement of exactly the release named, above this machine's highest."""
        release, answer, size = self._facts()
        with sequences.opened(self.args.state_file, self.server) as record:
            highest = record.highest(release.bin, release.arch)
            text = signing.new_statement(
                "pin",
                release,
                size,
                answer.get("nextSequence"),
                highest,
                self.args.expires_days,
                self.args.allow_sequence_jump,
            )
            signature = self._signed(text, NEW, release, record)
        return {"statement": text.to_bytes().decode(), "signature": signature}

    def sign(self) -> tuple[str, Any]:
        """Co-sign the release's current statement, or sign a new one; the line to print
        and the server's answer."""
        args = self.args
        release, answer, size = self._facts()
        offered = signing.offered_statement(answer, release)
        with sequences.opened(args.state_file, self.server) as record:
            highest = record.highest(release.bin, release.arch)
            cosign = signing.to_cosign(offered, highest, args.new, args.allow_sequence_jump)
            text, how = cosign, COSIGNATURE
            if text is None:
                nxt = answer.get("nextSequence")
                text = signing.new_statement(
                    "release", release, size, nxt, highest, args.expires_days,
                    args.allow_sequence_jump,
                )  # fmt: skip
                how = NEW
            signature = self._signed(text, how, release, record)
        body = {"statement": text.to_bytes().decode(), "signature": signature}
        done = self.call(self.http, "POST", f"{self.base}/bins/{args.bin}/signatures", json=body)
        count = done["signatures"]
        line = (
            f"signed {text.bin} {text.arch} {text.sha256} sequence {text.sequence} "
            f"by {done['fingerprint']} ({count} signature{'' if count == 1 else 's'})"
        )
        return line, done

    def _facts(self) -> tuple[signing.Named, dict[str, Any], int]:
        """The release the arguments name, the server's GET …/signing answer about it, and
        the size to sign (the file's, else the server's: checked against each other)."""
        args = self.args
        release = signing.named(args.bin, args.arch, args.sha256, args.file)
        params = {"sha256": release.sha256, "arch": release.arch}
        url = f"{self.base}/bins/{args.bin}/signing"
        answer = self.call(self.http, "GET", url, params=params)
        if not isinstance(answer, dict):
            raise ConfigError(f"the bin-manager gave no signing facts: {signing.NOTHING_SIGNED}")
        return release, answer, signing.checked_size(release, answer)

    def _signed(
        self, text: ssh.Statement, how: str, release: signing.Named, record: sequences.Record
    ) -> str:
        """Show `text`, sign it, and record its sequence before the signature leaves."""
        size_from = (
            "the file's"
            if release.size is not None
            else "the bin-manager's: it caps hosts' downloads; --file checks it"
        )
        signing.show(text, how, size_from)
        signature = signing.sign(text, self.args.sign_key)
        record.raise_to(text.bin, text.arch, text.sequence)
        return signature

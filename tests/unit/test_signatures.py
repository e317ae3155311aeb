"""Signed statements with real OpenSSH signatures (ssh-keygen -Y), keys made per test."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ansible_proxy.errors import ConfigError
from ansible_proxy.signatures import (
    SignatureRefused,
    SignatureUnchecked,
    Statement,
    TrustedKeys,
    key_fingerprint,
    load_trusted_keys,
    parse_statement,
    require_keygen,
    sign,
    verify,
)

SHA = "ab" * 32
NOW = 1_800_000_000.0


def keypair(tmp_path: Path, name: str) -> Path:
    key = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    return key


def trusted(tmp_path: Path, *keys: Path, threshold: int | None = None) -> TrustedKeys:
    lines = [f"# threshold: {threshold}"] if threshold else []
    lines += [f"{key.name} {key.with_suffix('.pub').read_text().strip()}" for key in keys]
    path = tmp_path / "trusted_keys"
    path.write_text("\n".join(lines) + "\n")
    return load_trusted_keys(path)


def release(**changes: object) -> Statement:
    values: dict[str, object] = {"kind": "release", "bin": "web", "arch": "x86_64",
                                 "sha256": SHA, "size": 42, "sequence": 7,
                                 "expires": int(NOW) + 3600}  # fmt: skip
    values.update(changes)
    return Statement(**values)  # type: ignore[arg-type]


def check(
    statement: Statement, signatures: list[str], keys: TrustedKeys, **over: object
) -> Statement:
    expect: dict[str, object] = {"bin_name": "web", "arch": "x86_64", "sha256": SHA, "size": 42,
                                 "highest_sequence": 5, "now": NOW}  # fmt: skip
    expect.update(over)
    return verify(statement.to_bytes(), signatures, keys, **expect)  # type: ignore[arg-type]


def test_a_release_signed_by_a_trusted_key_is_accepted(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    keys = trusted(tmp_path, alice)
    statement = release()
    assert check(statement, [sign(statement, alice)], keys) == statement
    assert parse_statement(statement.to_bytes()) == statement


@pytest.mark.parametrize(
    ("changes", "over", "reason"),
    [
        ({"sha256": "cd" * 32}, {}, "not this release"),
        ({"arch": "aarch64"}, {}, "not this release"),
        ({"size": 43}, {}, "not this release"),
        ({"expires": int(NOW) - 1}, {}, "has expired"),
        ({"sequence": 4}, {}, "older statement replayed"),
    ],
)
def test_each_refusal_names_its_reason(
    tmp_path: Path, changes: dict[str, object], over: dict[str, object], reason: str
) -> None:
    alice = keypair(tmp_path, "alice")
    statement = release(**changes)
    with pytest.raises(SignatureRefused, match=reason):
        check(statement, [sign(statement, alice)], trusted(tmp_path, alice), **over)


def test_a_pin_is_a_new_statement_and_an_old_pin_replayed_is_refused(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    keys = trusted(tmp_path, alice)
    pin = release(kind="pin", sequence=9)  # back to an older sha, with the next sequence
    assert check(pin, [sign(pin, alice)], keys).kind == "pin"
    old_pin = release(kind="pin", sequence=2)
    with pytest.raises(SignatureRefused, match="older statement replayed"):
        check(old_pin, [sign(old_pin, alice)], keys)


def test_the_server_learns_which_key_signed(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    statement = release()
    signature = sign(statement, alice)
    shown = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(alice.with_suffix(".pub"))],
        capture_output=True, text=True, check=True,
    ).stdout.split()[1]  # fmt: skip
    assert key_fingerprint(statement.to_bytes(), signature) == shown
    with pytest.raises(SignatureRefused, match="does not verify"):
        key_fingerprint(release(sequence=8).to_bytes(), signature)
    with pytest.raises(SignatureRefused, match="not an armored"):
        key_fingerprint(statement.to_bytes(), "garbage")


def test_an_untrusted_revoked_or_tampered_signature_does_not_count(tmp_path: Path) -> None:
    alice, mallory = keypair(tmp_path, "alice"), keypair(tmp_path, "mallory")
    statement = release()
    by_mallory = sign(statement, mallory)
    with pytest.raises(SignatureRefused, match="0 of the 1 trusted signatures"):
        check(statement, [by_mallory], trusted(tmp_path, alice))
    by_alice = sign(statement, alice)
    with pytest.raises(SignatureRefused, match="0 of the 1"):  # alice's line removed: revoked
        check(statement, [by_alice], trusted(tmp_path, mallory))
    other = release(sequence=8)  # a good signature of another statement
    with pytest.raises(SignatureRefused, match="0 of the 1"):
        verify(statement.to_bytes(), [sign(other, alice)], trusted(tmp_path, alice),
               bin_name="web", arch="x86_64", sha256=SHA, size=42, highest_sequence=5,
               now=NOW)  # fmt: skip


def test_a_threshold_needs_distinct_signers(tmp_path: Path) -> None:
    alice, bob = keypair(tmp_path, "alice"), keypair(tmp_path, "bob")
    keys = trusted(tmp_path, alice, bob, threshold=2)
    statement = release()
    one = sign(statement, alice)
    with pytest.raises(SignatureRefused, match="1 of the 2 trusted signatures needed"):
        check(statement, [one, one], keys)
    assert check(statement, [one, sign(statement, bob)], keys) == statement


def test_a_statement_not_in_canonical_form_is_refused() -> None:
    with pytest.raises(SignatureRefused, match="canonical"):
        parse_statement(release().to_bytes().replace(b",", b", "))
    with pytest.raises(SignatureRefused, match="not JSON"):
        parse_statement(b"\xff")


def test_a_bad_trusted_keys_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("alice\n")
    with pytest.raises(ConfigError, match=r"keys:1: expected `principal \[namespaces="):
        load_trusted_keys(path)
    alice = keypair(tmp_path, "alice")
    path.write_text(f"# threshold: 2\nalice {alice.with_suffix('.pub').read_text()}")
    with pytest.raises(ConfigError, match="threshold 2 but 1 distinct signers"):
        load_trusted_keys(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_trusted_keys(tmp_path / "missing")


def key_line(key: Path, principal: str = "") -> str:
    return f"{principal or key.name} {key.with_suffix('.pub').read_text().strip()}"


# What splits a line for str.splitlines() but not for OpenSSH (which ends a line at \n),
# and other characters that read differently to the two: a NUL, NBSP, a zero-width space,
# a right-to-left override, a byte order mark.
HIDDEN = ["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029",
          "\x00", "\xa0", "\u200b", "\u202e", "\ufeff"]  # fmt: skip


@pytest.mark.parametrize("hidden", HIDDEN, ids=[f"U+{ord(c):04X}" for c in HIDDEN])
def test_a_key_line_cannot_hide_a_second_line_that_lowers_the_threshold(
    tmp_path: Path, hidden: str
) -> None:
    alice, bob = keypair(tmp_path, "alice"), keypair(tmp_path, "bob")
    path = tmp_path / "trusted_keys"
    # OpenSSH reads the hidden part as alice's key comment; splitlines() read a threshold
    # line, the last one won, and the host took one signature where the file asks two.
    text = f"# threshold: 2\n{key_line(alice)}{hidden}# threshold: 1\n{key_line(bob)}\n"
    path.write_bytes(text.encode("utf-8"))
    with pytest.raises(ConfigError, match=rf"trusted_keys:2: holds U\+{ord(hidden):04X} "):
        load_trusted_keys(path)


UNUSABLE = {
    "two-thresholds": (["# threshold: 2", "{alice}", "{bob}", "# threshold: 1"],
                       ":4: a second `# threshold:`"),
    "threshold-word": (["# threshold: two", "{alice}"], ":1: expected `# threshold: K`"),
    "threshold-case": (["# Threshold: 2", "{alice}", "{bob}"], ":1: expected `# threshold: K`"),
    "threshold-huge": (["# threshold: 2" + "0" * 5000, "{alice}"], ":1: expected `# threshold"),
    "threshold-fullwidth": (["# threshold: \uff12", "{alice}", "{bob}"], ":1: expected `# thr"),
    "one-principal-twice": (["# threshold: 2", "{alice}", "{alice_again}"],
                            "threshold 2 but 1 distinct signers"),
    "truncated-key": (["alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"], ":1: expected `principal"),
    "rsa": (["alice ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ"], ":1: expected `principal"),
    "wildcard-principal": (["* {alice_key}"], ":1: expected `principal"),
    "two-principals": (["alice,bob {alice_key}"], ":1: expected `principal"),
    "cert-authority": (["alice cert-authority {alice_key}"], ":1: expected `principal"),
}  # fmt: skip


@pytest.mark.parametrize(("lines", "error"), UNUSABLE.values(), ids=UNUSABLE.keys())
def test_each_unusable_trusted_keys_file_is_one_error_naming_the_line(
    tmp_path: Path, lines: list[str], error: str
) -> None:
    alice, bob, again = (
        keypair(tmp_path, "alice"),
        keypair(tmp_path, "bob"),
        keypair(tmp_path, "a2"),
    )
    keys = {"alice": key_line(alice), "bob": key_line(bob), "alice_again": key_line(again, "alice"),
            "alice_key": alice.with_suffix(".pub").read_text().strip()}  # fmt: skip
    path = tmp_path / "trusted_keys"
    path.write_text("\n".join(line.format(**keys) for line in lines) + "\n")
    with pytest.raises(ConfigError, match=re.escape(error)):
        load_trusted_keys(path)


def test_openssh_forms_of_a_good_line_are_read(tmp_path: Path) -> None:
    alice, bob = keypair(tmp_path, "alice"), keypair(tmp_path, "bob")
    public = bob.with_suffix(".pub").read_text().strip()
    path = tmp_path / "trusted_keys"
    path.write_text(
        "# the publishers\n\n  #   threshold:2  \n"
        f"{key_line(alice).replace(' ', chr(9), 1)}\n"  # a tab between fields
        f'bob namespaces="ansible-proxy-release",valid-after="20240101" {public} bob@laptöp\n'
    )
    keys = load_trusted_keys(path)
    assert (keys.principals, keys.threshold) == (("alice", "bob"), 2)
    statement = release()
    both = [sign(statement, alice), sign(statement, bob)]
    assert check(statement, both, keys) == statement  # and OpenSSH reads the file the same


def test_the_keys_ssh_keygen_checks_are_the_bytes_read_once(tmp_path: Path) -> None:
    """A TRUSTED_KEYS file changed after it was read (a tick is under way) changes nothing
    for that tick: its principals and threshold and the keys checked are the same bytes."""
    alice, mallory = keypair(tmp_path, "alice"), keypair(tmp_path, "mallory")
    keys = trusted(tmp_path, alice)
    # Swapped on disk: "alice" is now mallory's key. Read again, mallory would pass as alice.
    keys.path.write_text(f"alice {mallory.with_suffix('.pub').read_text().strip()}\n")
    statement = release()
    with pytest.raises(SignatureRefused, match="0 of the 1"):
        check(statement, [sign(statement, mallory)], keys)
    assert check(statement, [sign(statement, alice)], keys) == statement


def test_a_signature_expired_by_this_host_s_clock_only_is_the_host_s_fault(
    tmp_path: Path,
) -> None:
    alice = keypair(tmp_path, "alice")
    keys = trusted(tmp_path, alice)
    statement = release(expires=int(NOW) - 60)  # expired a minute ago by this host's clock
    signature = sign(statement, alice)
    with pytest.raises(SignatureUnchecked, match="by this host's clock, not by the bin-manager"):
        check(statement, [signature], keys, server_now=NOW - 120)  # the host 2 min ahead
    with pytest.raises(SignatureRefused, match="has expired") as both:  # by both clocks
        check(statement, [signature], keys, server_now=NOW)
    assert not isinstance(both.value, SignatureUnchecked)


def test_ssh_keygen_missing_is_a_configuration_error_told_before_any_release(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    require_keygen()  # on this machine's PATH
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no ssh-keygen
    with pytest.raises(ConfigError, match="TRUSTED_KEYS needs ssh-keygen"):
        require_keygen()

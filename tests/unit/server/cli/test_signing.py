"""What the publisher's side signs (server/cli/signing.py): the release the arguments or the
file name, checked against each answer of the bin-manager; each refusal one ConfigError."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from ansible_proxy.errors import ConfigError
from ansible_proxy.server.cli import signing
from ansible_proxy.signatures import MAX_SEQUENCE, Statement

SHA = "a" * 64
OTHER = "b" * 64
RELEASE = signing.Named("hello", "x86_64", SHA, None)


def answer(**changes: object) -> dict[str, object]:
    return {"binName": "hello", "arch": "x86_64", "sha256": SHA, "size": 18, **changes}


def test_the_release_comes_from_the_arguments_and_the_file(tmp_path: Path) -> None:
    build = tmp_path / "hello"
    build.write_bytes(b"hello\n")
    digest = hashlib.sha256(b"hello\n").hexdigest()
    assert signing.named("hello", "amd64", SHA.upper(), None) == RELEASE
    assert signing.named("hello", "arm64", digest, build) == signing.Named(
        "hello", "aarch64", digest, 6
    )
    with pytest.raises(ConfigError, match=f"has sha256 {digest}, not {SHA}: nothing was signed"):
        signing.named("hello", "x86_64", SHA, build)
    with pytest.raises(ConfigError, match="unknown cpu arch 'sparc'"):
        signing.named("hello", "sparc", SHA, None)
    with pytest.raises(ConfigError, match="invalid sha256"):
        signing.named("hello", "x86_64", "abc", None)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sha256": OTHER}, f"answered about hello x86_64 {OTHER}, not hello x86_64 {SHA}"),
        ({"arch": "aarch64"}, "answered about hello aarch64"),
        ({"binName": "web"}, "answered about web x86_64"),
        ({"size": None}, "gave no size"),
        ({"size": True}, "gave no size"),
    ],
)
def test_an_answer_about_anything_else_is_refused(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        signing.checked_size(RELEASE, answer(**changes))


def test_the_size_is_the_files_when_there_is_one() -> None:
    assert signing.checked_size(RELEASE, answer()) == 18
    from_file = signing.Named("hello", "x86_64", SHA, 17)
    with pytest.raises(ConfigError, match="has 18 bytes, the file has 17: nothing was signed"):
        signing.checked_size(from_file, answer())


def test_a_new_statement_goes_above_this_machines_highest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    offered = signing.new_statement("release", RELEASE, 18, 7, 3, 365)
    assert (offered.sequence, offered.sha256, offered.size) == (7, SHA, 18)
    assert capsys.readouterr().err == ""
    lowered = signing.new_statement("pin", RELEASE, 18, 2, 3, 365)
    assert (lowered.kind, lowered.sequence) == ("pin", 4)
    assert "offered sequence 2, not above 3" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="above 9007199254740991"):
        signing.new_statement("release", RELEASE, 18, MAX_SEQUENCE + 1, 0, 365)
    # A server pushing the sequence far above this machine's record (hosts would then
    # refuse every later release): refused; one step of at most 1000 is taken.
    assert signing.new_statement("release", RELEASE, 18, 1003, 3, 365).sequence == 1003
    with pytest.raises(ConfigError, match="offered sequence 1004, more than 1000 above 3"):
        signing.new_statement("release", RELEASE, 18, 1004, 3, 365)
    with pytest.raises(ConfigError, match="gave no next sequence"):
        signing.new_statement("release", RELEASE, 18, "7", 3, 365)


def statement(**changes: object) -> str:
    values: dict[str, object] = {"kind": "release", "bin": "hello", "arch": "x86_64",
                                 "sha256": SHA, "size": 18, "sequence": 5,
                                 "expires": int(time.time()) + 86400}  # fmt: skip
    values.update(changes)
    return Statement(**values).to_bytes().decode()  # type: ignore[arg-type]


def test_a_statement_offered_for_co_signing_must_be_of_the_release_named() -> None:
    offered = signing.offered_statement({"statement": statement()}, RELEASE)
    assert offered is not None
    assert signing.offered_statement({"statement": None}, RELEASE) is None
    with pytest.raises(ConfigError, match=f"offers a statement of hello x86_64 {OTHER}"):
        signing.offered_statement({"statement": statement(sha256=OTHER)}, RELEASE)
    with pytest.raises(ConfigError, match="offers a bad statement"):
        signing.offered_statement({"statement": statement() + " "}, RELEASE)
    with pytest.raises(ConfigError, match="offers a statement of 18 bytes, the file has 17"):
        signing.offered_statement(
            {"statement": statement()}, signing.Named("hello", "x86_64", SHA, 17)
        )


def test_a_co_signature_never_goes_below_this_machines_highest() -> None:
    offered = signing.offered_statement({"statement": statement(kind="pin")}, RELEASE)
    assert signing.to_cosign(offered, 5, new=False) == offered
    assert signing.to_cosign(offered, 5, new=True) is None  # --new: a new statement
    with pytest.raises(ConfigError, match="has sequence 5, below 6, the highest this machine"):
        signing.to_cosign(offered, 6, new=False)
    pushed = signing.offered_statement({"statement": statement(sequence=5300)}, RELEASE)
    with pytest.raises(ConfigError, match="has sequence 5300, more than 1000 above 4299"):
        signing.to_cosign(pushed, 4299, new=False)
    assert signing.to_cosign(pushed, 4300, new=False) == pushed
    far = signing.offered_statement(
        {"statement": statement(expires=int(time.time()) + 3700 * 86400)}, RELEASE
    )
    with pytest.raises(ConfigError, match="expires more than 3650 days from now"):
        signing.to_cosign(far, 0, new=False)
    expired = signing.offered_statement({"statement": statement(expires=1)}, RELEASE)
    assert signing.to_cosign(expired, 9, new=False) is None  # a new statement instead

"""The hosts' check of a served release (client/verified.py) against a bin-manager answering
GET /bins/{bin}/signature in process (support/handler_transport.py) as a test sets it,
with real ed25519 keys and ssh-keygen: every statement of a release considered, the one
unsigned step back, and the `.trust` record."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ansible_proxy.client.api import Api
from ansible_proxy.client.transport import Client, Request
from ansible_proxy.client.verified import (
    KEPT,
    TrustRecord,
    check_install,
    read_record,
    remember,
    trusted_statement,
)
from ansible_proxy.errors import ConfigError, RetryableError
from ansible_proxy.signatures import (
    SignatureRefused,
    SignatureUnchecked,
    Statement,
    TrustedKeys,
    load_trusted_keys,
    sign,
)
from tests.support.handler_transport import HandlerTransport, Reply

SHA = "ab" * 32
OTHER = "cd" * 32
NOW = time.time()


class SignatureServer:
    """Answers GET /api/v1/bins/{bin}/signature with `answer` (a `data` object, or None
    for 404), dated by this machine's clock; every other route is 404."""

    api_url = "http://bin-manager.test/api/v1"

    def __init__(self) -> None:
        self.answer: dict[str, Any] | None = None

    def handle(self, request: Request) -> Reply:
        path = urlsplit(request.url).path
        if request.method == "GET" and path.endswith("/signature") and self.answer is not None:
            status, envelope = 200, {"code": 0, "message": "success", "data": self.answer}
        else:
            status, envelope = 404, {"code": 404, "message": "not found", "data": None}
        headers = {"Content-Type": "application/json", "Date": formatdate(usegmt=True)}
        return Reply(status, json.dumps(envelope).encode(), headers)


@pytest.fixture
def server() -> SignatureServer:
    return SignatureServer()


@contextmanager
def api_for(server: SignatureServer, arch: str = "x86_64") -> Iterator[Api]:
    transport = HandlerTransport(server.handle)
    with Client([server.api_url], transport=transport, timeout=5.0) as client:
        yield Api(client, server.api_url, "n1", arch)


@pytest.fixture
def api(server: SignatureServer) -> Iterator[Api]:
    with api_for(server) as made:
        yield made


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for name in ("alice", "mallory"):
        key = folder / name
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
        )
        made[name] = key
    return made


@pytest.fixture
def trusted(tmp_path: Path, keys: dict[str, Path]) -> TrustedKeys:
    """TRUSTED_KEYS with alice alone (mallory is a key the hosts never trusted)."""
    path = tmp_path / "trusted_keys"
    path.write_text(f"alice {keys['alice'].with_suffix('.pub').read_text()}")
    return load_trusted_keys(path)


def statement(sequence: int, sha: str = SHA, **changes: Any) -> Statement:
    values: dict[str, Any] = {"kind": "release", "bin": "web", "arch": "x86_64",
                              "sha256": sha, "size": 42, "sequence": sequence,
                              "expires": int(NOW) + 3600}  # fmt: skip
    values.update(changes)
    return Statement(**values)


def signed(made: Statement, *keys: Path) -> dict[str, Any]:
    return {"statement": made.to_bytes().decode(), "signatures": [sign(made, k) for k in keys]}


def answer(*entries: dict[str, Any], statements: bool = True) -> dict[str, Any]:
    """The route's `data`: the highest statement on top (as every server serves it) and,
    from a newer server, all of them in `statements`."""
    data: dict[str, Any] = {"binName": "web", "arch": "x86_64", "sha256": SHA, **entries[0]}
    if statements:
        data["statements"] = list(entries)
    return data


def test_an_untrusted_higher_statement_does_not_hide_a_trusted_one(
    server: SignatureServer, api: Api, trusted: TrustedKeys, keys: dict[str, Path]
) -> None:
    # A stolen admin token signed sequence 9 with a key no host trusts: the server serves
    # it on top. alice's statement (sequence 7) is still served below it, and taken.
    hiding = signed(statement(9), keys["mallory"])
    good = statement(7)
    server.answer = answer(hiding, signed(good, keys["alice"]))
    assert trusted_statement(api, "web", SHA, trusted, 5, NOW) == good


def test_each_statement_must_be_for_exactly_this_release_and_not_a_replay(
    server: SignatureServer, api: Api, trusted: TrustedKeys, keys: dict[str, Path]
) -> None:
    alice = keys["alice"]
    elsewhere = signed(statement(9, sha=OTHER), alice)  # trusted, for another release
    expired = signed(statement(8, expires=int(NOW) - 1), alice)
    replayed = signed(statement(4), alice)  # below the host's sequence 5
    server.answer = answer(elsewhere, expired, replayed)
    with pytest.raises(SignatureRefused) as refused:
        trusted_statement(api, "web", SHA, trusted, 5, NOW)
    assert str(refused.value) == (
        f"the signature is for web x86_64 {OTHER[:12]} (42 bytes), not this release "
        "(2 other statement(s) refused too)"
    )
    fresh = statement(6)
    server.answer = answer(elsewhere, expired, signed(fresh, alice), replayed)
    assert trusted_statement(api, "web", SHA, trusted, 5, NOW) == fresh


def test_an_older_server_serves_the_highest_statement_only(
    server: SignatureServer, api: Api, trusted: TrustedKeys, keys: dict[str, Path]
) -> None:
    good = statement(7)
    server.answer = answer(signed(good, keys["alice"]), statements=False)
    assert trusted_statement(api, "web", SHA, trusted, 5, NOW) == good
    server.answer = answer(signed(statement(9), keys["mallory"]), statements=False)
    with pytest.raises(SignatureRefused, match=r"^0 of the 1 trusted signatures needed"):
        trusted_statement(api, "web", SHA, trusted, 5, NOW)
    server.answer = None
    with pytest.raises(SignatureRefused, match="not signed"):
        trusted_statement(api, "web", SHA, trusted, 5, NOW)


def test_the_statements_considered_are_bounded(
    server: SignatureServer, api: Api, trusted: TrustedKeys, keys: dict[str, Path]
) -> None:
    # 16 statements at most: a trusted one served 17th is never reached (nor checked).
    junk = [signed(statement(100 - n, sha=OTHER), keys["mallory"]) for n in range(16)]
    server.answer = answer(*junk, signed(statement(7), keys["alice"]))
    assert len(api.signature("web", SHA) or ()) == 16
    with pytest.raises(SignatureRefused, match=r"not this release \(15 other statement"):
        trusted_statement(api, "web", SHA, trusted, 5, NOW)
    # A statement over 4096 bytes, or a malformed entry, is garbage: retried next tick.
    long = {"statement": "x" * 4097, "signatures": []}
    for bad in (long, {"statement": 7}, "a string"):
        server.answer = answer(signed(statement(7), keys["alice"]), bad)  # type: ignore[arg-type]
        with pytest.raises(RetryableError, match="a malformed entry in `statements`"):
            api.signature("web", SHA)


def test_one_unsigned_step_back_per_arch_until_a_signed_install(
    tmp_path: Path, server: SignatureServer, trusted: TrustedKeys, keys: dict[str, Path]
) -> None:
    folder = tmp_path / "web"
    remember(folder, OTHER, statement(3, sha=OTHER))
    remember(folder, SHA, statement(4))  # a signed install of SHA; OTHER ran before it
    server.answer = None  # no signature for the way back: only the unsigned step may go
    with api_for(server, "x86_64") as x86, api_for(server, "aarch64") as arm:
        steps(folder, server, trusted, keys, x86, arm)


def steps(
    folder: Path, server: SignatureServer, trusted: TrustedKeys, keys: dict[str, Path],
    x86: Api, arm: Api,
) -> None:  # fmt: skip
    assert check_install(x86, folder, "web", OTHER, trusted, NOW, own=True) is None
    assert read_record(folder).moved_back == {"x86_64": OTHER}
    # The same step again (a crash before the switch): still allowed. Another: refused.
    assert check_install(x86, folder, "web", OTHER, trusted, NOW, own=True) is None
    with pytest.raises(SignatureRefused, match=r"^a second move back without a signature"):
        check_install(x86, folder, "web", SHA, trusted, NOW, own=True)
    # Not the host's own rollback target, or never verified here: the signed path only.
    with pytest.raises(SignatureRefused, match=r"^not signed"):
        check_install(arm, folder, "web", "ef" * 32, trusted, NOW, own=True)
    # Another arch (a cluster proxy's other group) has its own step.
    assert check_install(arm, folder, "web", OTHER, trusted, NOW, own=True) is None
    assert read_record(folder).moved_back == {"x86_64": OTHER, "aarch64": OTHER}

    # A signed install for x86_64 ends its move back, not aarch64's.
    server.answer = answer(signed(statement(5), keys["alice"]))
    installed = check_install(x86, folder, "web", SHA, trusted, NOW, own=False)
    assert installed is not None
    assert installed.sequence == 5
    remember(folder, SHA, installed)
    record = read_record(folder)
    assert (record.sequence, record.moved_back) == (5, {"aarch64": OTHER})
    assert check_install(x86, folder, "web", OTHER, trusted, NOW, own=True) is None


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"sequence": 7, "verif', "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"verified": []}', "no sequence"),
        (b'{"sequence": "7", "verified": []}', "no sequence"),
        (b'{"sequence": 7}', "no list of verified releases"),
        (b"[]", "no sequence"),
    ],
)
def test_a_damaged_trust_record_is_said_never_read_as_empty(
    tmp_path: Path, server: SignatureServer, api: Api, trusted: TrustedKeys,
    keys: dict[str, Path], content: bytes, why: str,
) -> None:  # fmt: skip
    """Read as empty, it would take any older release signed before (sequence 0)."""
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / ".trust").write_bytes(content)
    server.answer = answer(signed(statement(2), keys["alice"]))  # below the record's 7
    with pytest.raises(ConfigError, match=rf"{folder / '.trust'}: .* damaged \({why}"):
        check_install(api, folder, "web", SHA, trusted, NOW, own=False)
    assert (folder / ".trust").read_bytes() == content  # left for a person to look at


def test_no_trust_record_yet_is_a_first_install(
    tmp_path: Path, server: SignatureServer, api: Api, trusted: TrustedKeys, keys: dict[str, Path]
) -> None:
    server.answer = answer(signed(statement(2), keys["alice"]))
    found = check_install(api, tmp_path / "web", "web", SHA, trusted, NOW, own=False)
    assert found is not None
    assert found.sequence == 2


def test_expired_by_this_host_s_clock_only_is_not_the_release_s_refusal(
    server: SignatureServer, api: Api, trusted: TrustedKeys, keys: dict[str, Path]
) -> None:
    """The test server's Date is the real time; this host's clock is two hours ahead."""
    server.answer = answer(signed(statement(2), keys["alice"]))  # expires in an hour
    ahead = time.time() + 7200
    with pytest.raises(SignatureUnchecked, match="by this host's clock, not by the bin-manager"):
        trusted_statement(api, "web", SHA, trusted, 0, ahead)


def test_the_record_keeps_the_highest_sequence_and_the_latest_releases(tmp_path: Path) -> None:
    folder = tmp_path / "web"
    shas = [f"{n:064x}" for n in range(KEPT + 6)]
    for number, sha in enumerate(shas):
        remember(folder, sha, statement(number + 1, sha=sha))
    remember(folder, shas[-3], statement(2, sha=shas[-3]))  # an older signed pin, again
    record = read_record(folder)
    assert record.sequence == KEPT + 6  # never lowered: an older release stays refused
    assert len(record.verified) == KEPT
    assert record.verified[-1] == shas[-3]  # the latest install last, not twice
    assert record.verified[:-1] == (*shas[6:-3], *shas[-2:])  # the 6 oldest forgotten
    assert (folder / ".trust").stat().st_mode & 0o777 == 0o644


def test_the_record_is_what_older_agents_read_and_garbage_in_it_is_dropped(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "web"
    remember(folder, SHA, statement(3))
    assert json.loads((folder / ".trust").read_text()) == {"sequence": 3, "verified": [SHA]}
    (folder / ".trust").write_text(
        json.dumps({"sequence": 4, "verified": [SHA, "nope", 7], "movedBack": ["x86_64"]})
    )
    assert read_record(folder) == TrustRecord(4, (SHA,), {})
    (folder / ".trust").write_text(
        json.dumps({"sequence": 4, "verified": [SHA], "movedBack": {"x86_64": OTHER, "a": 1}})
    )
    assert read_record(folder).moved_back == {"x86_64": OTHER}

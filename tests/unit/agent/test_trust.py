"""agent/trust.py: with TRUSTED_KEYS a release is installed only when signed by the keys
trusted, except the one unsigned step back to this host's own rollback target; without
them nothing is asked. Against a bin-manager answering in process
(support/handler_transport.py), with real ed25519 keys and ssh-keygen."""

from __future__ import annotations

import io
import json
import subprocess
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from ansible_proxy.agent import trust
from ansible_proxy.agent.host import Host
from ansible_proxy.agent.manifest import ManagedBinary
from ansible_proxy.client import history
from ansible_proxy.client.api import Api
from ansible_proxy.client.config import build_config
from ansible_proxy.client.logs import Log
from ansible_proxy.client.transport import Client, Request
from ansible_proxy.client.verified import read_record, remember
from ansible_proxy.signatures import SignatureRefused, Statement, sign
from tests.support.handler_transport import HandlerTransport, Reply

V1, V2, V3 = "a1" * 32, "b2" * 32, "c3" * 32
NOW = time.time()
API = "https://bin-manager.test/api/v1"


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


def statement(sha: str, sequence: int) -> Statement:
    return Statement(kind="release", bin="web", arch="x86_64", sha256=sha, size=42,
                     sequence=sequence, expires=int(NOW) + 3600)  # fmt: skip


class BinManager:
    """GET /bins/web/signature answered with `signed` (release sha → statement and its
    signatures), 404 for a release with none; every request kept."""

    def __init__(self) -> None:
        self.signed: dict[str, dict[str, Any]] = {}
        self.transport = HandlerTransport(self.handle)

    def sign(self, made: Statement, key: Path) -> None:
        body = {"statement": made.to_bytes().decode(), "signatures": [sign(made, key)]}
        self.signed[made.sha256] = {"binName": "web", "arch": "x86_64", **body}

    def handle(self, request: Request) -> Reply:
        asked = request.url.split("sha256=")[-1].split("&")[0]
        data = self.signed.get(asked)
        status = 200 if data else 404
        envelope = {"code": 0 if data else 404, "message": "", "data": data}
        headers = {"Content-Type": "application/json", "Date": formatdate(usegmt=True)}
        return Reply(status, json.dumps(envelope).encode(), headers)


def make_host(tmp_path: Path, server: BinManager, trusted_keys: str) -> Host:
    """This host's Host, its log kept in memory (`logged`)."""
    env = {
        "BIN_MANAGER_API": API,
        "TRUSTED_KEYS": trusted_keys,
        "BIN_MANIFESTS": str(tmp_path / "bin-manifests.json"),
        "STORE_DIR": str(tmp_path / "store"),
        "LOCK_DIR": str(tmp_path / "locks"),
        "BIN_DIR": str(tmp_path / "bin"),
    }
    cfg = build_config({}, env, {}, "web-01")
    client = Client([API], transport=server.transport)
    api = Api(client, API, "web-01", "x86_64")
    return Host(cfg, api, Log(None, echo=io.StringIO()), lambda: NOW)


@pytest.fixture
def server() -> BinManager:
    return BinManager()


@pytest.fixture
def host(tmp_path: Path, server: BinManager, keys: dict[str, Path]) -> Iterator[Host]:
    """A host with TRUSTED_KEYS naming alice (mallory's key is trusted by no host)."""
    trusted = tmp_path / "trusted_keys"
    trusted.write_text(f"alice {keys['alice'].with_suffix('.pub').read_text()}")
    made = make_host(tmp_path, server, str(trusted))
    yield made
    made.api.client.close()


def installed(version: str, previous: str, **past: str) -> ManagedBinary:
    """web, running `version` after `previous`, with `past` (sha → result) as its history."""
    return ManagedBinary("web", "web", version=version, previous_version=previous, history=past)


def test_without_trusted_keys_nothing_is_asked(tmp_path: Path, server: BinManager) -> None:
    plain = make_host(tmp_path, server, "")
    assert trust.check(plain, installed(V1, ""), V2) is None
    assert server.transport.requests == []


def test_a_release_signed_by_a_trusted_key_is_installed_with_its_statement(
    host: Host, server: BinManager, keys: dict[str, Path]
) -> None:
    server.sign(statement(V2, 3), keys["alice"])
    found = trust.check(host, installed(V1, ""), V2)
    assert found == statement(V2, 3)  # its size (42) then caps the download
    assert not (host.cfg.store_dir / "web" / ".trust").exists()  # recorded once installed


@pytest.mark.parametrize("signer", ["mallory", None])
def test_a_release_not_signed_by_a_trusted_key_is_refused(
    host: Host, server: BinManager, keys: dict[str, Path], signer: str | None
) -> None:
    if signer:
        server.sign(statement(V2, 3), keys[signer])
    with pytest.raises(SignatureRefused) as refused:
        trust.check(host, installed(V1, ""), V2)
    assert str(refused.value).startswith(
        "0 of the 1 trusted signatures needed" if signer else "not signed"
    )
    assert not host.cfg.store_dir.exists()  # nothing written on the way


def test_the_host_s_own_revert_needs_no_signature_once(
    host: Host, server: BinManager, keys: dict[str, Path]
) -> None:
    """A fleet revert to what this host ran well and verified: allowed once, recorded
    before the switch; the next waits for a signed install."""
    folder = host.cfg.store_dir / "web"
    for number, sha in enumerate((V3, V1, V2), start=1):
        remember(folder, sha, statement(sha, number))
    back = installed(V2, V1, **{V1: history.OK, V2: history.OK})
    assert trust.check(host, back, V1) is None
    assert read_record(folder).moved_back == {"x86_64": V1}
    assert server.transport.requests == []  # decided here: no signature asked
    assert f"INFO web@{V1[:12]}: a move back to the version verified here before: allowed" in (
        logged(host)
    )
    assert trust.check(host, back, V1) is None  # the same step again (a crash before the switch)
    further = installed(V1, V3, **{V3: history.OK, V1: history.OK})
    with pytest.raises(SignatureRefused, match=r"^a second move back without a signature"):
        trust.check(host, further, V3)
    assert read_record(folder).moved_back == {"x86_64": V1}
    remember(folder, V2, statement(V2, 4))  # a signed install (a pin signed by alice)
    assert trust.check(host, back, V1) is None


@pytest.mark.parametrize(
    ("entry", "target", "why"),
    [
        (installed(V2, V1, **{V1: history.ERR}), V1, "it failed here"),
        (installed(V2, V3, **{V1: history.OK}), V1, "not the rollback target"),
        (installed(V2, V1), V1, "it never ran here"),
        (installed(V2, V3, **{V3: history.OK}), V3, "never verified here"),
    ],
)
def test_any_other_move_back_needs_a_signature(
    host: Host, entry: ManagedBinary, target: str, why: str
) -> None:
    folder = host.cfg.store_dir / "web"
    remember(folder, V1, statement(V1, 1))
    with pytest.raises(SignatureRefused, match=r"^not signed"):
        trust.check(host, entry, target)
    assert read_record(folder).moved_back == {}, why


def logged(host: Host) -> str:
    assert isinstance(host.log.echo, io.StringIO)
    return host.log.echo.getvalue()

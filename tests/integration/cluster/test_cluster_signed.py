"""Cluster mode with TRUSTED_KEYS (docs/security.md): a package is verified like an
agent's release before anything is unpacked — a real bin-manager and its CLI, the real
nginx cache, a namespace host reached by real ansible-playbook."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from examples.cluster.build_package import build_package

from tests.support.agent import sha256
from tests.support.cluster import ClusterLab, running_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterLab]:
    with running_lab(tmp_path_factory.mktemp("signed"), ["x86_64"]) as lab:
        yield lab


def keygen(lab: ClusterLab, name: str) -> tuple[Path, str]:
    keyfile = lab.root / "keys" / name
    keyfile.parent.mkdir(exist_ok=True)
    made = lab.bin_manager.cli("keygen", str(keyfile), "--principal", name)
    assert made.returncode == 0, made.stderr
    (line,) = [ln for ln in made.stdout.splitlines() if ln.startswith(f"{name} ")]
    return keyfile, line


def test_a_package_without_a_trusted_signature_is_never_unpacked(lab: ClusterLab) -> None:
    alice, alice_line = keygen(lab, "alice")
    mallory, _ = keygen(lab, "mallory")
    trusted = lab.root / "trusted_keys"
    trusted.write_text(alice_line + "\n")
    lab.extra_env["TRUSTED_KEYS"] = str(trusted)
    (host,) = lab.hosts
    package = build_package("x86_64", "1")
    sha = lab.bin_manager.publish("hello-pkg", package)  # the admin token alone: unsigned
    unpacked = lab.work_dir / "releases" / "hello" / sha
    log = lab.root / "cluster.log"

    unsigned = lab.run(lab.write_manifests())
    assert unsigned.returncode == 1, log.read_text()[-3000:]
    assert "package refused: not signed" in log.read_text()
    assert not unpacked.exists()
    assert not (lab.work_dir / "packages" / "hello-pkg" / f"{sha}.tar.gz").exists()
    assert not (host.app_dir / "bin" / "hello").exists()  # no playbook ran

    # Signed, but by a key the cluster does not trust: refused the same way.
    by_mallory = lab.bin_manager.cli("sign", "hello-pkg", sha, "--sign-key", str(mallory))
    assert by_mallory.returncode == 0, by_mallory.stderr
    untrusted = lab.run(lab.write_manifests())
    assert untrusted.returncode == 1, log.read_text()[-3000:]
    assert "0 of the 1 trusted signatures needed" in log.read_text()
    assert not unpacked.exists()

    by_alice = lab.bin_manager.cli("sign", "hello-pkg", sha, "--sign-key", str(alice), "--new")
    assert by_alice.returncode == 0, by_alice.stderr
    signed = lab.run(lab.write_manifests())
    assert signed.returncode == 0, log.read_text()[-3000:]
    assert unpacked.is_dir()
    assert host.get() == "hello x86_64 1\n"
    assert sha256(package) == sha

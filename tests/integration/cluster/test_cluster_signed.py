"""Cluster mode with TRUSTED_KEYS (docs/security.md): a package is verified like an
agent's release before anything is unpacked — a real bin-manager and its CLI, the real
nginx cache, a namespace host reached by real ansible-playbook."""

from __future__ import annotations

import json
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

    # A staged rollout's fleet revert moves the cluster back one release with no new
    # signature, as it moves an agent back; a second step back is refused.
    sha2 = publish_signed(lab, alice, "2")
    assert lab.run(lab.write_manifests()).returncode == 0, log.read_text()[-3000:]
    policy = ("--canary", "1", "--waves", "100%", "--bake", "3600", "--max-failures", "1")
    assert lab.bin_manager.cli("rollout", "set", "hello-pkg", *policy).returncode == 0
    publish_signed(lab, alice, "3")  # the canary (the one host) is told it first
    assert lab.run(lab.write_manifests()).returncode == 0, log.read_text()[-3000:]
    assert host.get() == "hello x86_64 3\n"
    aborted = lab.bin_manager.cli("rollout", "abort", "hello-pkg")
    assert f"every node is told {sha2[:12]} again" in aborted.stdout, aborted.stderr
    reverted = lab.run(lab.write_manifests())
    assert reverted.returncode == 0, log.read_text()[-3000:]
    assert host.get() == "hello x86_64 2\n"
    assert "a move back to the release verified here before: allowed" in log.read_text()

    # A stolen admin token: one more step back. Refused (the cluster's state records the
    # release it moved back from as this one's rollback target: a plain replay here).
    lab.bin_manager.pin("hello-pkg", sha)
    again = lab.run(lab.write_manifests())
    assert again.returncode == 1, log.read_text()[-3000:]
    assert "package refused: sequence 2 is below 4" in log.read_text().splitlines()[-1]
    assert host.get() == "hello x86_64 2\n"
    trust = json.loads((lab.work_dir / "packages" / "hello-pkg" / ".trust").read_text())
    assert trust["movedBack"] == {"x86_64": sha2}


def publish_signed(lab: ClusterLab, key: Path, version: str) -> str:
    """`bin-manager publish --sign-key` of the x86_64 package of `version`; its sha256."""
    package = lab.root / f"hello-pkg-{version}.tar.gz"
    package.write_bytes(build_package("x86_64", version))
    done = lab.bin_manager.cli(
        "publish", str(package), "--name", "hello-pkg", "--arch", "x86_64", "--sign-key", str(key)
    )
    assert done.returncode == 0, done.stderr
    return sha256(package.read_bytes())

"""`bin-manager publish|pin|pause|resume|list` as an operator runs them, against a real server."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from tests.support.answers import envelope
from tests.support.procs import free_port
from tests.support.server import BIN_MANAGER_SCRIPT, BinManager


def cli(
    manager: BinManager | None, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIN_MANAGER_")}
    env["BIN_MANAGER_URL"] = manager.url if manager else f"http://127.0.0.1:{free_port()}"
    env["BIN_MANAGER_ADMIN_TOKEN"] = (
        token if token is not None else (manager.admin_token if manager else "")
    )
    return subprocess.run(
        [str(BIN_MANAGER_SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_publish_pin_pause_resume_and_list(tmp_path: Path, bin_manager: BinManager) -> None:
    v1_file, v2_file = tmp_path / "v1", tmp_path / "v2"
    v1_file.write_bytes(b"version 1" * 50_000)
    v2_file.write_bytes(b"version 2" * 50_000)
    v1 = hashlib.sha256(v1_file.read_bytes()).hexdigest()
    v2 = hashlib.sha256(v2_file.read_bytes()).hexdigest()

    published = cli(bin_manager, "publish", str(v1_file), "--name", "tool")
    assert (published.returncode, published.stdout) == (0, f"{v1}\n"), published.stderr
    assert (
        cli(bin_manager, "publish", str(v2_file), "--name", "tool", "--arch", "amd64").stdout
        == f"{v2}\n"
    )
    with bin_manager.client() as http:
        assert http.get(f"{bin_manager.api}/download/tool").content == v2_file.read_bytes()

    assert cli(bin_manager, "pin", "tool", v1).returncode == 0
    assert bin_manager.admin_get("/bins").json()["data"][0]["latest"] == {"x86_64": v1}
    assert cli(bin_manager, "pause", "tool").returncode == 0
    assert bin_manager.admin_get("/bins").json()["data"][0]["paused"] is True
    assert cli(bin_manager, "resume", "tool").returncode == 0
    assert bin_manager.admin_get("/bins").json()["data"][0]["paused"] is False

    releases = json.loads(cli(bin_manager, "list", "releases", "tool", "--json").stdout)
    assert {(r["sha256"], r["latest"]) for r in releases} == {(v1, True), (v2, False)}
    bins = json.loads(cli(bin_manager, "list", "bins", "--json").stdout)
    assert [b["binName"] for b in bins] == ["tool"]
    assert json.loads(cli(bin_manager, "list", "nodes", "--json").stdout) == []


def test_cli_errors_are_one_clear_line(tmp_path: Path, bin_manager: BinManager) -> None:
    artifact = tmp_path / "artifact"
    artifact.write_bytes(b"content")

    wrong = cli(
        bin_manager, "publish", str(artifact), "--name", "tool", token="wrong-token-0123456789"
    )
    assert wrong.returncode == 2
    assert "401" in wrong.stderr
    assert "wrong bearer token" in wrong.stderr
    assert wrong.stdout == ""

    bad_name = cli(bin_manager, "publish", str(artifact), "--name", "..")
    assert bad_name.returncode == 2
    assert "invalid bin name" in bad_name.stderr

    missing = cli(bin_manager, "publish", str(tmp_path / "nope"), "--name", "tool")
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr

    unknown_sha = cli(bin_manager, "pin", "tool", "0" * 64)
    assert unknown_sha.returncode == 2
    assert "404" in unknown_sha.stderr

    down = cli(None, "publish", str(artifact), "--name", "tool", token="x" * 20)
    assert down.returncode == 75
    assert "cannot reach the bin-manager" in down.stderr
    for result in (wrong, bad_name, missing, unknown_sha, down):
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
    envelope(bin_manager.admin_get("/bins"), 200)
    assert bin_manager.admin_get("/bins").json()["data"] == []

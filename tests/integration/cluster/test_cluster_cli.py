"""`ansible-proxy cluster …` as an operator types it: clear errors, nothing run or written."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.cluster import VENV_BIN

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "cluster"


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "BIN_MANAGER_API": "http://127.0.0.1:9/api/v1",  # never reached by these cases
        "LOG_FILE": str(tmp_path / "cluster.log"),
        "LOCK_DIR": str(tmp_path / "locks"),
        "ANSIBLE_PROXY_CONFIG": str(tmp_path / "config"),
    }
    (tmp_path / "config").write_text(f'export CLUSTER_DIR="{tmp_path / "work"}"\n')
    return subprocess.run(
        [str(VENV_BIN / "ansible-proxy"), "cluster", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_malformed_inventory_is_one_clear_error_and_nothing_runs(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web\nnode-1 ansible_host=192.0.2.1\n")
    result = cli(
        tmp_path,
        "run",
        "--inventory",
        str(inventory),
        "--manifests",
        str(EXAMPLES / "cluster.yaml"),
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"ansible-proxy: inventory {inventory}: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "work").exists()
    assert not (tmp_path / "locks").exists()


def test_keys_come_from_the_environment_too(tmp_path: Path) -> None:
    host_without_arch = tmp_path / "hosts.ini"
    host_without_arch.write_text('node-1 services=["hello"]\n')
    result = cli(
        tmp_path,
        "run",
        CLUSTER_INVENTORY=str(host_without_arch),
        CLUSTER_MANIFESTS=str(EXAMPLES / "cluster.yaml"),
    )
    assert result.returncode == 2
    assert "host node-1: `cpu_arch` must be x86_64 or aarch64" in result.stderr
    assert "unknown key" not in result.stderr  # CLUSTER_DIR in the config file is ours


def test_a_missing_inventory_key_is_named(tmp_path: Path) -> None:
    result = cli(tmp_path, "run", "--manifests", str(EXAMPLES / "cluster.yaml"))
    assert result.returncode == 2
    assert "CLUSTER_INVENTORY is not set" in result.stderr


def test_nginx_config_prints_a_cache_config_and_refuses_a_bad_upstream(tmp_path: Path) -> None:
    args = ["nginx-config", "--listen", "127.0.0.1:8081", "--cache-dir", str(tmp_path / "c")]
    good = cli(tmp_path, *args, "--upstream", "http://127.0.0.1:8080")
    assert good.returncode == 0, good.stderr
    assert "proxy_cache_lock on;" in good.stdout
    bad = cli(tmp_path, *args, "--upstream", "127.0.0.1:8080")
    assert bad.returncode == 2
    assert "--upstream must be http(s)://host[:port]" in bad.stderr
    assert not (tmp_path / "c").exists()

"""`bin-manager delete-release` against a real server: what it did, in one line, and the
activity log. The route itself: tests/routes/test_delete_release.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.server import BinManager, BinManagerFactory


def artifact(server: BinManager, digest: str) -> Path:
    return server.data_dir / "artifacts" / digest[:2] / digest


def cli(manager: BinManager, *args: str) -> subprocess.CompletedProcess[str]:
    return manager.cli(*args)


def test_cli_deletes_says_what_it_did_and_the_activity_log_shows_it(
    bin_manager_factory: BinManagerFactory,
) -> None:
    manager = bin_manager_factory(extra_env={"BIN_MANAGER_DASHBOARD_PUBLIC": "1"})
    v1 = manager.publish("tool", b"tool v1")
    v2 = manager.publish("tool", b"tool v2")
    manager.publish("copy", b"tool v1")
    manager.publish("copy", b"copy v2")

    refused = cli(manager, "delete-release", "tool", v2)
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        f"bin-manager: error: bin-manager refused (409): cannot delete release {v2} of tool "
        "(x86_64): it is the latest x86_64 release (published or pinned): "
        "pin another release first"
    ]

    shared = cli(manager, "delete-release", "tool", v1.upper(), "--arch", "x86_64")
    assert (shared.returncode, shared.stderr) == (0, "")
    assert shared.stdout == (
        f"deleted tool x86_64 release {v1}; "
        "its artifact stays: another release has the same content\n"
    )
    removed = cli(manager, "delete-release", "copy", v1)
    assert (removed.returncode, removed.stderr) == (0, "")
    assert removed.stdout == (
        f"deleted copy x86_64 release {v1}; its artifact was removed from the store\n"
    )
    assert not artifact(manager, v1).exists()

    gone = cli(manager, "delete-release", "copy", v1)
    assert gone.returncode == 2
    assert "404" in gone.stderr
    bad = cli(manager, "delete-release", "copy", "../../nodes")
    assert bad.returncode == 2
    assert "invalid sha256" in bad.stderr

    with manager.client() as http:
        page = http.get(f"{manager.url}/dashboard/activity").text
    assert page.count('<tr class="delete">') == 2
    assert f'<code title="{v1}">' in page

"""A real bin-manager keeps only the newest history rows it is configured to keep."""

from __future__ import annotations

import pytest

from tests.support.server import BinManagerFactory


def test_server_prunes_history_beyond_the_configured_rows(
    bin_manager_factory: BinManagerFactory,
) -> None:
    bm = bin_manager_factory(
        extra_env={"BIN_MANAGER_HISTORY_MAX_ROWS": "3", "BIN_MANAGER_PRUNE_INTERVAL_SECONDS": "0"}
    )
    sha = bm.publish("app", b"app 1")
    info = {"nodeName": "n1", "cpuArch": "x86_64", "osRelease": "t", "binProxyVersion": "1"}
    with bm.client() as http:
        assert http.post(f"{bm.api}/keepalive", json=info).status_code == 200
        for seconds in range(8):
            progress = {"nodeName": "n1", "binName": "app", "targetHash": sha,
                        "processingTime": seconds, "status": "in_progress"}  # fmt: skip
            answer = http.post(f"{bm.api}/bins/app/progress", json=progress)
            assert answer.status_code == 200, answer.text
            report = {"nodeName": "n1", "binName": "app", "sha256": sha, "version": "latest"}
            assert http.post(f"{bm.api}/bins/app", json=report).status_code == 200

    detail = bm.admin_get("/nodes/n1").json()["data"]
    assert [p["processingTime"] for p in detail["progress"]] == [7, 6, 5]
    assert len(detail["reports"]) == 3
    assert [(b["binName"], b["sha256"]) for b in detail["bins"]] == [("app", sha)]


def test_a_bad_retention_setting_is_refused_at_start(
    bin_manager_factory: BinManagerFactory,
) -> None:
    with pytest.raises(RuntimeError, match="invalid setting history_days"):
        bin_manager_factory(extra_env={"BIN_MANAGER_HISTORY_DAYS": "-1"})

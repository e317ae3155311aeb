"""The server's own resources failing (issue 26.6): a full data directory (a tmpfs the test
mounts), PostgreSQL stopped under a running bin-manager, SQLite locked by another process.

Each failure is one clear answer in the envelope (507 naming the directory, 503 naming the
database by host and port, never its password), one log line when the outage starts and
one when it ends (how long, how many requests failed), no traceback; /healthz stays a
liveness check and /readyz, which writes, says what is wrong until it is fixed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.postgres import running_postgres
from tests.support.procs import wait_until
from tests.support.server import BinManager

pytestmark = pytest.mark.host_only  # mounts a tmpfs; stops its own PostgreSQL


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextmanager
def serving(manager: BinManager) -> Iterator[BinManager]:
    manager.start()
    try:
        yield manager
    finally:
        manager.stop()


def fill(directory: Path) -> None:
    """Write zeros into `directory` until its file system has no byte left."""
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={directory / 'filler'}", "bs=64k"],
        capture_output=True,
        check=False,
    )


def call(manager: BinManager, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request on a connection of its own (admin token for /api/v1/admin paths)."""
    headers = manager.admin_headers if path.startswith("/api/v1/admin") else {}
    with manager.client(timeout=90) as http:
        return http.request(method, f"{manager.url}{path}", headers=headers, **kwargs)


def keepalive(name: str) -> dict[str, str]:
    return {"nodeName": name, "cpuArch": "x86_64", "osRelease": "Debian 12", "binProxyVersion": "1"}


def ready(manager: BinManager) -> bool:
    return call(manager, "GET", "/readyz").status_code == 200


def outage_lines(manager: BinManager) -> list[str]:
    return [line for line in manager.service.log().splitlines() if "server.outages:" in line]


def test_a_full_data_directory_answers_507_naming_it_until_space_is_freed(
    tmp_path: Path,
) -> None:
    manager = BinManager(tmp_path / "bm")
    with tmpfs(manager.data_dir, "16m"), serving(manager):
        v1 = manager.publish("hello", b"#!/bin/sh\necho v1\n")
        assert call(manager, "GET", "/readyz").json()["data"] == {"status": "ready"}
        fill(manager.data_dir)

        answers = [
            call(manager, "POST", "/api/v1/admin/bins/hello/releases", content=b"v2" * 20_000)
            for _ in range(3)
        ]
        answers.append(call(manager, "POST", "/api/v1/keepalive", json=keepalive("web-09")))
        for answer in answers:
            assert answer.status_code == 507, answer.text
            body = answer.json()
            assert body["code"] == 507
            assert f"the data directory {manager.data_dir} is full" in body["message"]
        # Nothing of the uploads stayed: the release list and the upload area are as before.
        releases = manager.admin_get("/bins/hello/releases").json()["data"]
        assert [release["sha256"] for release in releases] == [v1]
        assert list((manager.data_dir / "artifacts" / "tmp").iterdir()) == []

        health = call(manager, "GET", "/healthz")
        assert health.status_code == 200  # alive: a restart would not free the disk
        assert health.json()["data"]["status"] == "degraded"
        not_ready = call(manager, "GET", "/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["code"] == 503
        assert f"the data directory {manager.data_dir} is full" in not_ready.json()["message"]

        (manager.data_dir / "filler").unlink()
        wait_until(lambda: ready(manager), 30, "/readyz once space is freed")
        v2 = manager.publish("hello", b"v2" * 20_000)
        assert v2 != v1

        log = manager.service.log()
        assert "Traceback" not in log
        started, ended = outage_lines(manager)
        assert " ERROR " in started
        assert f"the data directory {manager.data_dir} is full" in started
        assert re.search(
            rf"the data directory {re.escape(str(manager.data_dir))} is back after [0-9.]+ s; "
            r"4 request\(s\) failed meanwhile",
            ended,
        ), ended


def test_postgresql_stopped_answers_503_naming_it_and_logs_the_outage_once(
    tmp_path: Path,
) -> None:
    password = "pw-Zt7qK2mV9xRb"
    with running_postgres() as pg:
        database = pg.create_database()
        with psycopg.connect(pg.admin_dsn(), autocommit=True) as admin:
            admin.execute(f"CREATE ROLE binmanager LOGIN SUPERUSER PASSWORD '{password}'")
        url = f"postgresql+psycopg://binmanager:{password}@127.0.0.1:{pg.port}/{database}"
        manager = BinManager(tmp_path / "bm", database_url=url)
        with serving(manager):
            v1 = manager.publish("hello", b"#!/bin/sh\necho v1\n")
            assert call(manager, "POST", "/api/v1/keepalive", json=keepalive("web-01")).is_success
            pg.stop()

            progress = {"nodeName": "web-01", "binName": "hello", "targetHash": v1,
                        "processingTime": 3, "status": "in_progress"}  # fmt: skip
            answers = [
                call(manager, "GET", "/api/v1/admin/bins"),
                call(manager, "GET", "/api/v1/bins/other?nodeName=web-01&arch=x86_64"),
                call(manager, "POST", "/api/v1/bins/hello/progress", json=progress),
                call(manager, "POST", "/api/v1/admin/bins/hello/releases", content=b"v2"),
                call(manager, "POST", "/api/v1/keepalive", json=keepalive("web-02")),
            ]
            named = f"the database (PostgreSQL at 127.0.0.1:{pg.port}, database {database})"
            for answer in answers:
                assert answer.status_code == 503, answer.text
                assert answer.json() == {
                    "code": 503,
                    "message": f"{named} is unreachable (Connection refused)",
                }
            assert call(manager, "GET", "/healthz").status_code == 200
            not_ready = call(manager, "GET", "/readyz")
            assert not_ready.status_code == 503
            assert named in not_ready.json()["message"]

            pg.start_again()
            wait_until(lambda: ready(manager), 30, "/readyz once PostgreSQL is back")
            assert manager.publish("hello", b"v2") != v1

        log = manager.service.log()
        assert "Traceback" not in log
        assert password not in log
        started, ended = outage_lines(manager)
        assert f"{named} is unreachable (Connection refused); answering 503" in started
        assert re.search(
            rf"{re.escape(named)} is back after [0-9.]+ s; 5 request\(s\) failed meanwhile", ended
        ), ended


def test_sqlite_locked_by_another_process_answers_503_and_readyz_says_so(
    tmp_path: Path,
) -> None:
    manager = BinManager(tmp_path / "bm")
    with serving(manager):
        manager.publish("hello", b"#!/bin/sh\necho v1\n")
        database = manager.data_dir / "bin-manager.sqlite3"
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_THE_LOCK, str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "locked\n"
            named = f"the database (SQLite {database}) is locked by another process"
            not_ready = call(manager, "GET", "/readyz")  # waits a few seconds, not 30
            assert not_ready.status_code == 503
            assert named in not_ready.json()["message"]
            paused = call(manager, "POST", "/api/v1/admin/bins/hello/pause")  # waits 30 s
            assert paused.status_code == 503, paused.text
            assert paused.json()["code"] == 503
            assert named in paused.json()["message"]
            assert call(manager, "GET", "/healthz").status_code == 200
        finally:
            assert holder.stdin is not None
            assert holder.stdout is not None
            holder.stdin.close()
            holder.wait(timeout=30)
            holder.stdout.close()
        wait_until(lambda: ready(manager), 30, "/readyz once the lock is released")
        assert call(manager, "POST", "/api/v1/admin/bins/hello/pause").status_code == 200
        assert "Traceback" not in manager.service.log()
        started, ended = outage_lines(manager)
        assert named in started
        assert "1 request(s) failed meanwhile" in ended


# Another process holding SQLite's write lock until its stdin closes.
_HOLD_THE_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""

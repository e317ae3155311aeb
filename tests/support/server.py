"""Fixtures for the bin-manager: a real uvicorn process on loopback (SQLite or PostgreSQL).

`bin_manager` is a fresh server per test (fresh data dir, SQLite, random admin token);
`bin_manager_factory(**kwargs)` starts more, with an agent token, TLS, PostgreSQL or env.
Every server is started as `.venv/bin/bin-manager serve` and stopped by PID. bench/ and
the demo use `BinManager` directly (a fixed port, `--workers`, releases from files).
"""

from __future__ import annotations

import itertools
import os
import secrets
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.support.admin import AdminCalls
from tests.support.postgres import postgres_server, postgres_url
from tests.support.procs import LOOPBACK, Service, free_port, wait_until

__all__ = ["BinManager", "bin_manager", "bin_manager_factory", "postgres_server", "postgres_url"]

BIN_MANAGER_SCRIPT = Path(sys.executable).parent / "bin-manager"


class _PortTaken(Exception):
    """Another process bound the port between free_port() and this server's start."""


_ids = itertools.count(1)


class BinManager(AdminCalls):
    """A `bin-manager serve` subprocess and an admin HTTP client for it (tests/support/
    admin.py: publish, pin, pause…).

    The port and data dir stay the same across stop()/start()/restart()/kill().
    """

    def __init__(
        self,
        workdir: Path,
        *,
        agent_token: str | None = None,
        ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None,
        ssl_ca: Path | None = None,
        database_url: str | None = None,
        extra_env: dict[str, str] | None = None,
        admin_token: str | None = None,
        admin_token_file: Path | None = None,
        insecure_no_auth: bool = False,
        extra_args: list[str] | None = None,
        port: int | None = None,
        node_auth: str = "migrate",
        enrolment_token: str | None = None,
        host: str = LOOPBACK,
        netns: str | None = None,
    ) -> None:
        """`host` and `netns`: listen on `host` inside network namespace `netns` (a test's
        own, e.g. behind a slow link: tests/support/slow_link.py) instead of loopback."""
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = workdir / "data"
        self.netns = netns
        self._auto_port = port is None
        self._started = False
        self.port = port or free_port()
        scheme = "https" if ssl_certfile else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        self.api = f"{self.url}/api/v1"
        if admin_token_file is not None:
            admin_token = admin_token_file.read_text().strip()
        self.admin_token = admin_token or secrets.token_urlsafe(24)[:32]
        self.agent_token = agent_token
        # Node credentials (docs/security.md). "migrate" by default: the wire-contract tests
        # write as agents without credentials did; an `Agent` given `enrolment_token`
        # enrols, and tests of node auth start the server with node_auth="required".
        self.node_auth = node_auth
        self.enrolment_token = (
            None if insecure_no_auth else (enrolment_token or secrets.token_urlsafe(24))
        )
        self.database_url = database_url
        # Plain HTTP needs no CA (and loading one costs ~30 ms a client); over TLS the
        # helper trusts the test CA when given. The agent's own TLS checks are its tests'.
        self.verify: bool | ssl.SSLContext = (
            ssl.create_default_context(cafile=str(ssl_ca)) if ssl_ca else False
        )
        argv = [
            *(["ip", "netns", "exec", netns] if netns else []),  # exec's: the same PID
            str(BIN_MANAGER_SCRIPT),
            "serve",
            "--host",
            host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        if database_url:
            argv += ["--database-url", database_url]
        if ssl_certfile and ssl_keyfile:
            argv += ["--ssl-certfile", str(ssl_certfile), "--ssl-keyfile", str(ssl_keyfile)]
        if insecure_no_auth:
            argv.append("--insecure-no-auth")
        if admin_token_file is not None:
            argv += ["--admin-token-file", str(admin_token_file)]
        argv += extra_args or []
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIN_MANAGER_")}
        if admin_token_file is None:
            env["BIN_MANAGER_ADMIN_TOKEN"] = self.admin_token
        if agent_token is not None:
            env["BIN_MANAGER_AGENT_TOKEN"] = agent_token
        env["BIN_MANAGER_NODE_AUTH"] = node_auth
        if self.enrolment_token is not None:
            env["BIN_MANAGER_ENROLMENT_TOKEN"] = self.enrolment_token
        # Every release to every node at once, as before staged rollouts (the product's
        # default stages them): the rollout tests, bench/ and the demo set what they need.
        env["BIN_MANAGER_DEFAULT_ROLLOUT"] = "--immediate"
        env.update(extra_env or {})
        self.service = Service(argv, workdir / "bin-manager.log", env=env, cwd=workdir)

    # -- process -------------------------------------------------------------------
    def start(self, timeout: float = 60) -> BinManager:
        """Start the server and wait until /healthz answers, from this server's own socket.

        A port free when chosen may be taken by another test worker's server before ours
        binds it; then /healthz would answer from that server (and the admin token be
        "wrong"). Ours exits ("address already in use") and, when the port was ours to
        choose, starts again on another.
        """
        for _ in range(3):
            self.service.start()
            try:
                wait_until(self._ready, timeout, f"bin-manager on port {self.port}")
                self._started = True
                return self
            except _PortTaken:
                if not self._auto_port or self._started:  # a restart keeps its URL
                    raise
                self._move_to(free_port())
        raise RuntimeError(f"bin-manager: port taken three times:\n{self.service.log()[-3000:]}")

    def _ready(self) -> bool:
        if not self.service.running():
            log = self.service.log()
            if "address already in use" in log[-3000:].lower():
                raise _PortTaken(self.port)
            raise RuntimeError(f"bin-manager exited at start:\n{log[-3000:]}")
        try:
            with self.client(timeout=1) as http:
                if http.get(f"{self.url}/healthz").status_code != 200:
                    return False
        except httpx.HTTPError:
            return False
        return self._listening()

    def _listening(self) -> bool:
        """This server's process holds the listening socket (not another one's). In a
        namespace of the test's own nobody else can take the port (and psutil reads this
        namespace's sockets, not that one's)."""
        if self.netns is not None:
            return True
        try:
            return any(
                conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == self.port
                for conn in psutil.Process(self.pid).net_connections(kind="inet")
            )
        except psutil.Error:
            return False

    def _move_to(self, port: int) -> None:
        argv = self.service.argv
        argv[argv.index("--port") + 1] = str(port)
        self.url = self.url.replace(f":{self.port}", f":{port}")
        self.api = f"{self.url}/api/v1"
        self.port = port

    @property
    def pid(self) -> int:
        return self.service.pid

    def stop(self) -> None:
        self.service.stop()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.service.kill()

    def restart(self) -> BinManager:
        self.stop()
        return self.start()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`bin-manager ARGS` as an operator runs it against this server (URL and admin
        token from the environment, nothing else of the tests' BIN_MANAGER_* variables);
        the publisher's record of what it signed is kept in the work dir, not in $HOME."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIN_MANAGER_")}
        env["XDG_STATE_HOME"] = str(self.workdir / "publisher-state")
        env["BIN_MANAGER_URL"] = self.url
        env["BIN_MANAGER_ADMIN_TOKEN"] = self.admin_token
        return subprocess.run(
            [str(BIN_MANAGER_SCRIPT), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    # -- HTTP ------------------------------------------------------------------------
    def client(self, **kwargs: Any) -> httpx.Client:
        """A new httpx client trusting this server's certificate (close it, or use `with`)."""
        kwargs.setdefault("timeout", 30)
        return httpx.Client(verify=self.verify, **kwargs)


BinManagerFactory = Callable[..., BinManager]


@pytest.fixture
def bin_manager_factory(tmp_path: Path) -> Iterator[BinManagerFactory]:
    """A callable(**kwargs of BinManager) -> a started BinManager; all stopped after the test."""
    started: list[BinManager] = []

    def make(**kwargs: Any) -> BinManager:
        manager = BinManager(tmp_path / f"bin-manager-{next(_ids)}", **kwargs)
        started.append(manager)
        return manager.start()

    yield make
    for manager in started:
        manager.stop()


@pytest.fixture
def bin_manager(bin_manager_factory: BinManagerFactory) -> BinManager:
    """A fresh bin-manager: its own data dir, SQLite, a random 32-character admin token."""
    return bin_manager_factory()

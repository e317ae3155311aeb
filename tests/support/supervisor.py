"""Fixtures for a real supervisord (from the supervisor package) and programs under it.

`supervisord` starts `.venv/bin/supervisord` in the foreground with a unix socket and an
inet_http_server on 127.0.0.1:<free port> (user/password), and stops it by PID.
Programs are added at run time with `add_program` (a conf.d file + reloadConfig), or
given at start (`programs`: bench/ and the demo, which also go without the inet server).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import textwrap
import xmlrpc.client
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from supervisor.xmlrpc import SupervisorTransport

from tests.support.procs import LOOPBACK, Service, free_port, wait_until

SUPERVISORD = Path(sys.executable).parent / "supervisord"


class Supervisord:
    """A running supervisord; talk to it with `call` (the supervisor namespace)."""

    def __init__(
        self,
        workdir: Path,
        sockdir: Path,
        programs: Mapping[str, Path] | None = None,
        inet_http: bool = True,
    ) -> None:
        """`programs` (name → command) start with supervisord; `inet_http` adds the
        password-protected HTTP server on loopback beside the unix socket."""
        self.workdir = workdir
        self.confd = workdir / "conf.d"
        self.confd.mkdir(parents=True)
        self.sock = sockdir / "supervisor.sock"
        self.socket_url = f"unix://{self.sock}"
        self.http_port = free_port()
        self.http_url = f"http://{LOOPBACK}:{self.http_port}"
        self.user = "agent"
        self.password = "s3cret-test-only"
        inet = textwrap.dedent(f"""\
            [inet_http_server]
            port={LOOPBACK}:{self.http_port}
            username={self.user}
            password={self.password}
            """)
        self.conf = workdir / "supervisord.conf"
        self.conf.write_text(
            textwrap.dedent(f"""\
            [supervisord]
            nodaemon=true
            logfile={workdir}/supervisord.log
            pidfile={workdir}/supervisord.pid
            childlogdir={workdir}
            [unix_http_server]
            file={self.sock}
            """)
            + (inet if inet_http else "")
            + textwrap.dedent(f"""\
            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
            [supervisorctl]
            serverurl={self.socket_url}
            [include]
            files = {self.confd}/*.conf
            """)
        )
        for name, command in (programs or {}).items():
            self._write_program(name, command, startsecs=1)
        self.service = Service(
            [str(SUPERVISORD), "-c", str(self.conf)], workdir / "supervisord.out"
        )

    def call(self, method: str, *args: Any) -> Any:
        """One XML-RPC call `supervisor.<method>(*args)` over the unix socket."""
        transport = SupervisorTransport(None, None, self.socket_url)
        try:
            proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
            return getattr(proxy.supervisor, method)(*args)
        finally:
            transport.close()

    def start(self, timeout: float = 20) -> Supervisord:
        self.service.start()

        def ready() -> bool:
            if not self.service.running():
                raise RuntimeError(f"supervisord exited:\n{self.service.log()}")
            try:
                return bool(self.call("getState")["statename"] == "RUNNING")
            except OSError:
                return False

        wait_until(ready, timeout, "supervisord")
        return self

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """SIGSTOPped: its socket still takes connections, nothing answers them."""
        os.kill(self.service.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.service.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.service.stop()

    def add_program(self, name: str, command: Path, startsecs: int = 1) -> None:
        """Define [program:name] running `command` and start it (it may fail to start)."""
        self._write_program(name, command, startsecs)
        self.call("reloadConfig")
        self.call("addProcessGroup", name)

    def _write_program(self, name: str, command: Path, startsecs: int) -> None:
        (self.confd / f"{name}.conf").write_text(
            textwrap.dedent(f"""\
            [program:{name}]
            command={command}
            autostart=true
            autorestart=true
            startsecs={startsecs}
            startretries=1
            stopwaitsecs=3
            stdout_logfile={self.workdir}/{name}.log
            redirect_stderr=true
            """)
        )

    def info(self, name: str) -> dict[str, Any]:
        info: dict[str, Any] = self.call("getProcessInfo", name)
        return info

    def state(self, name: str) -> str:
        return str(self.info(name)["statename"])

    def pid(self, name: str) -> int:
        return int(self.info(name)["pid"])

    def wait_running(self, name: str, timeout: float = 20) -> int:
        """Wait until `name` is RUNNING; returns its pid."""
        wait_until(lambda: self.state(name) == "RUNNING", timeout, f"{name} RUNNING")
        return self.pid(name)

    def wait_all_running(self, timeout: float = 30) -> None:
        """Wait until every program defined is RUNNING."""

        def all_running() -> bool:
            infos: list[dict[str, Any]] = self.call("getAllProcessInfo")
            return all(info["statename"] == "RUNNING" for info in infos)

        wait_until(all_running, timeout, "every program RUNNING")


@pytest.fixture
def supervisord(tmp_path: Path) -> Iterator[Supervisord]:
    """A real supervisord for one test; its socket lives in a short /tmp dir (108-byte limit)."""
    sockdir = Path(tempfile.mkdtemp(prefix="sv-", dir="/tmp"))
    daemon = Supervisord(tmp_path / "supervisor", sockdir)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(sockdir, ignore_errors=True)

"""A real supervisord for the agent benchmark: generated config, unix socket, pid file
and logs in the workspace, `nodaemon` so it is our child (ended by PID)."""

from __future__ import annotations

import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport
from tests.support.procs import Service, wait_until

from bench.harness import VENV_BIN, Workspace

_HEAD = """\
[unix_http_server]
file={root}/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
logfile={root}/supervisord.log
pidfile={root}/supervisord.pid
childlogdir={root}/children

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{root}/supervisor.sock
"""

_PROGRAM = """
[program:{name}]
command={command}
autostart=true
autorestart=true
startsecs=1
stopwaitsecs=3
"""


class Supervisord:
    """supervisord running one program per (name, command) given."""

    def __init__(self, workspace: Workspace, programs: dict[str, Path]) -> None:
        self.root = workspace.path("supervisor")
        workspace.path("supervisor", "children")
        self.programs = programs
        self._workspace = workspace
        self._service: Service | None = None

    @property
    def socket_url(self) -> str:
        return f"unix://{self.root}/supervisor.sock"

    def start(self) -> Supervisord:
        conf = self.root / "supervisord.conf"
        text = _HEAD.format(root=self.root)
        for name, command in self.programs.items():
            text += _PROGRAM.format(name=name, command=command)
        conf.write_text(text)
        argv = [str(VENV_BIN / "supervisord"), "-c", str(conf)]
        self._service = self._workspace.start("supervisord", argv)
        wait_until(self._all_running, 30, "supervisord and its programs to be RUNNING")
        return self

    def rpc(self) -> Any:
        transport = SupervisorTransport(None, None, self.socket_url)
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def pid(self, name: str) -> int:
        info: dict[str, Any] = self.rpc().supervisor.getProcessInfo(name)
        pid: int = info["pid"]
        return pid

    def _all_running(self) -> bool:
        assert self._service is not None
        if not self._service.running():
            raise RuntimeError(f"supervisord exited at start:\n{self._service.log()}")
        try:
            infos: list[dict[str, Any]] = self.rpc().supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Fault):
            return False
        return len(infos) == len(self.programs) and all(
            info["statename"] == "RUNNING" for info in infos
        )

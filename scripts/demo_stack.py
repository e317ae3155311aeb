"""The processes `make demo` starts, each recorded by PID in DIR/pids and stopped by it.

Also the demo's host layout (BIN_DIR, STORE_DIR, ... under DIR/host), its supervisord
config and the tiny demo services (python scripts that answer on a TCP port).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

HOST = "127.0.0.1"
VENV_BIN = Path(sys.executable).parent
SOCKET_PATH_LIMIT = 100  # AF_UNIX paths are limited to 108 bytes


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def detail(text: str) -> None:
    for line in text.rstrip().splitlines():
        print(f"      {line}", flush=True)


def free_port(preferred: int = 0) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            chosen: int = sock.getsockname()[1]
            return chosen
    raise RuntimeError("no free port on 127.0.0.1")


def service_program(name: str, version: str, port: int, broken: bool = False) -> bytes:
    """A demo service: answers '<name> <version>' on its port; a broken one exits at once."""
    crash = "sys.exit('this release is broken: it exits at start')" if broken else ""
    return textwrap.dedent(f"""\
        #!{sys.executable}
        # demo service {name}, {version}
        import socket, sys
        {crash}
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", {port}))
        server.listen()
        while True:
            conn, _ = server.accept()
            conn.sendall(b"{name} {version}\\n")
            conn.close()
        """).encode()


def ask_port(port: int) -> str:
    """What the service on `port` answers (one line), or why it does not."""
    try:
        with socket.create_connection((HOST, port), timeout=2) as conn:
            return conn.recv(200).decode(errors="replace").strip()
    except OSError as exc:
        return f"no answer ({exc.strerror or exc})"


class Stack:
    """The demo dir: logs, data, the host layout, and the PIDs of what was started."""

    def __init__(self, path: Path) -> None:
        self.dir = path
        self.pids = path / "pids"
        self.host = path / "host"
        self.sock = self._socket_path()

    def _socket_path(self) -> Path:
        wanted = self.dir / "supervisor.sock"
        if len(str(wanted)) <= SOCKET_PATH_LIMIT:
            return wanted
        recorded = self.dir / "socket-dir"
        if recorded.exists():
            return Path(recorded.read_text().strip()) / "supervisor.sock"
        return Path(tempfile.mkdtemp(prefix="demo-sv-", dir="/tmp")) / "supervisor.sock"

    def prepare(self) -> None:
        for sub in ("bin", "store", "locks", "log", "etc"):
            (self.host / sub).mkdir(parents=True, exist_ok=True)
        if self.sock.parent != self.dir:
            (self.dir / "socket-dir").write_text(f"{self.sock.parent}\n")

    def start(self, argv: list[str], log_name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.dir / log_name).open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.dir,
                start_new_session=True,
            )
        with self.pids.open("a") as pids:
            pids.write(f"{proc.pid}\n")
        return proc

    def stop_all(self) -> None:
        """End what a demo started, newest first, by PID (its process group); wait for each."""
        if self.pids.exists():
            for line in reversed(self.pids.read_text().split()):
                _stop_group(int(line))
            self.pids.unlink()
        socket_dir = self.dir / "socket-dir"
        if socket_dir.exists():
            self.sock.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.sock.parent.rmdir()
            socket_dir.unlink()

    # -- supervisord ------------------------------------------------------------------
    def supervisord_conf(self, programs: list[str]) -> Path:
        sv = self.dir / "supervisor"
        sv.mkdir(exist_ok=True)
        text = textwrap.dedent(f"""\
            [supervisord]
            nodaemon=true
            logfile={sv}/supervisord.log
            pidfile={sv}/supervisord.pid
            childlogdir={sv}
            [unix_http_server]
            file={self.sock}
            chmod=0700
            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
            [supervisorctl]
            serverurl=unix://{self.sock}
            """)
        for name in programs:
            text += textwrap.dedent(f"""\
                [program:{name}]
                command={self.host}/bin/{name}
                autostart=true
                autorestart=true
                startsecs=1
                startretries=1
                stopwaitsecs=3
                stdout_logfile={sv}/{name}.log
                redirect_stderr=true
                """)
        conf = sv / "supervisord.conf"
        conf.write_text(text)
        return conf

    def supervisor(self, method: str, *args: Any) -> Any:
        """One XML-RPC call to the demo's supervisord over its unix socket."""
        transport = SupervisorTransport(None, None, f"unix://{self.sock}")
        try:
            proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
            return getattr(proxy.supervisor, method)(*args)
        finally:
            transport.close()

    def wait_supervisord(self, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"supervisord exited; see {self.dir}/supervisord.out")
            with contextlib.suppress(OSError, xmlrpc.client.Fault):
                if self.supervisor("getState")["statename"] == "RUNNING":
                    return
            time.sleep(0.1)
        raise RuntimeError(f"supervisord did not answer on {self.sock} within {timeout} s")

    def process(self, name: str) -> tuple[str, int]:
        info = self.supervisor("getProcessInfo", name)
        return str(info["statename"]), int(info["pid"])


def _stop_group(pid: int, timeout: float = 15) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    say(f"stopped process group {pid}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when this process started it (--stop-at-end)
        try:
            os.killpg(pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)

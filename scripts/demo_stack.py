"""The demo's state dir: the PIDs of what `make demo` started (DIR/pids, stopped by PID
from a later run too), the host layout (BIN_DIR, STORE_DIR, ... under DIR/host), where
supervisord's socket lives, and the tiny demo services (python scripts that answer on a
TCP port). The services themselves are started by tests/support's launchers.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import tempfile
import textwrap
from pathlib import Path

from tests.support.procs import LOOPBACK, PidFile, Service

SOCKET_PATH_LIMIT = 100  # AF_UNIX paths are limited to 108 bytes


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def detail(text: str) -> None:
    for line in text.rstrip().splitlines():
        print(f"      {line}", flush=True)


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
        with socket.create_connection((LOOPBACK, port), timeout=2) as conn:
            return conn.recv(200).decode(errors="replace").strip()
    except OSError as exc:
        return f"no answer ({exc.strerror or exc})"


class Stack:
    """The demo dir: logs, data, the host layout, and the PIDs of what was started."""

    def __init__(self, path: Path) -> None:
        self.dir = path
        self.pids = PidFile(path / "pids")
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

    def keep(self, service: Service) -> Service:
        """Record a started service's PID so that `stop_all` ends it, in this run or later."""
        return self.pids.add(service)

    def stop_all(self) -> None:
        """End what a demo started, newest first, by PID (its process group); wait for each."""
        for pid in self.pids.stop_all():
            say(f"stopped process group {pid}")
        socket_dir = self.dir / "socket-dir"
        if socket_dir.exists():
            self.sock.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.sock.parent.rmdir()
            socket_dir.unlink()

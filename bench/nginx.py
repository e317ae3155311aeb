"""Debian's nginx as the baseline: its own generated config, pid file, logs and temp
paths inside the workspace, `daemon off` so the master is our child (ended by PID)."""

from __future__ import annotations

from pathlib import Path

from tests.support.procs import LOOPBACK, Service, free_port, port_open, wait_until

from bench.harness import Workspace

NGINX = "/usr/sbin/nginx"

_CONF = """\
daemon off;
master_process on;
worker_processes auto;
pid {root}/nginx.pid;
error_log {root}/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;

    server {{
        listen {host}:{port};
        root {www};
        location /api/v1/bins/ {{
            default_type application/json;
        }}
    }}
}}
"""


class Nginx:
    """nginx serving the files under `www` (URL path = file path) on a free loopback port."""

    def __init__(self, workspace: Workspace) -> None:
        self.root = workspace.path("nginx")
        self.www = workspace.path("nginx", "www")
        self.port = free_port()
        self._workspace = workspace
        self._service: Service | None = None

    @property
    def pid(self) -> int:
        assert self._service is not None, "not started"
        return self._service.pid

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def put(self, url_path: str, content: bytes | Path) -> None:
        """Serve `content` (bytes, or a file hard-linked/copied in) at `url_path`."""
        target = self.www / url_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        for parent in target.relative_to(self.www).parents:
            (self.www / parent).chmod(0o755)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.hardlink_to(content)
        target.chmod(0o644)

    def start(self) -> Nginx:
        self._workspace.path("nginx", "tmp")
        conf = self.root / "nginx.conf"
        conf.write_text(_CONF.format(root=self.root, www=self.www, host=LOOPBACK, port=self.port))
        argv = [NGINX, "-p", str(self.root), "-c", str(conf), "-e", str(self.root / "error.log")]
        self._service = self._workspace.start("nginx", argv)
        wait_until(lambda: self._up(), 10, "nginx to listen")
        return self

    def _up(self) -> bool:
        assert self._service is not None
        if not self._service.running():
            err = (self.root / "error.log").read_text(errors="replace")
            raise RuntimeError(f"nginx exited at start: {self._service.log()}{err}")
        return port_open(self.port)

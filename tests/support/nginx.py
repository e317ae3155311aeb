"""Debian's nginx in front of bin-managers: load balancing and X-Accel-Redirect downloads.

`fleet_nginx_conf()` is the configuration docs/scale-out.md shows; `NginxProxy` runs it
(`daemon off`, our child, ended by PID) with its pid, logs and temp paths in `root`.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.procs import LOOPBACK, Service, free_port, port_open, wait_until

NGINX = "/usr/sbin/nginx"

_CONF = """\
daemon off;
master_process on;
worker_processes 1;
user {user};
pid {root}/nginx.pid;
error_log {root}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    sendfile on;
    client_max_body_size 0;

    upstream bin_manager {{
        least_conn;
{servers}
        keepalive 64;
    }}

    server {{
        listen {host}:{port};
{extra}
        location / {{
            proxy_pass http://bin_manager;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_request_buffering off;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 3;
        }}

        # bin-manager answers a download with X-Accel-Redirect: /_artifacts/<sha256>
        location /_artifacts/ {{
            internal;
            alias {artifacts}/;
        }}
    }}
}}
"""

# What an original-design server answers for the batch poll: no such endpoint.
HIDE_BATCH = """        location = /api/v1/bins {
            return 404 '{"code": 404, "message": "no such endpoint"}';
        }
"""


def fleet_nginx_conf(
    root: Path,
    port: int,
    upstream_ports: list[int],
    artifacts: Path,
    user: str = "www-data",
    extra: str = "",
) -> str:
    """The scale-out configuration: `upstream_ports` behind one listener on loopback."""
    servers = "\n".join(
        f"        server {LOOPBACK}:{p} max_fails=1 fail_timeout=2s;" for p in upstream_ports
    )
    return _CONF.format(
        user=user,
        root=root,
        servers=servers,
        host=LOOPBACK,
        port=port,
        extra=extra,
        artifacts=artifacts.resolve(),
    )


class NginxProxy:
    """nginx on a free loopback port, proxying to bin-managers on `upstream_ports`."""

    def __init__(
        self, root: Path, upstream_ports: list[int], artifacts: Path, extra: str = ""
    ) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.api = f"{self.url}/api/v1"
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (root / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        self.conf = root / "nginx.conf"
        # Tests keep artifacts in pytest's root-only temp dirs: the workers run as root.
        text = fleet_nginx_conf(root, self.port, upstream_ports, artifacts, "root", extra)
        self.conf.write_text(text)
        argv = [NGINX, "-p", str(root), "-c", str(self.conf), "-e", str(root / "error.log")]
        self.service = Service(argv, root / "nginx.out")

    def start(self) -> NginxProxy:
        self.service.start()

        def up() -> bool:
            if not self.service.running():
                raise RuntimeError(f"nginx exited at start:\n{self.errors()}")
            return port_open(self.port)

        wait_until(up, 20, f"nginx on port {self.port}")
        return self

    def stop(self) -> None:
        self.service.stop()

    def errors(self) -> str:
        path = self.root / "error.log"
        return self.service.log() + (path.read_text(errors="replace") if path.exists() else "")

    def access_log(self) -> str:
        path = self.root / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

"""Debian's nginx in front of bin-managers (load balancing, X-Accel-Redirect downloads),
or serving static files (bench/'s baseline for the bin-manager).

`fleet_nginx_conf()` is the configuration docs/scale-out.md shows; `NginxProxy` runs it,
`StaticNginx` serves the files under its `www`, `CacheNginx` is the cluster's cache,
`TlsNginx` a TLS proxy (for supervisord). Each is `daemon off` (our child, ended by PID)
with its pid, logs and temp paths in `root`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Self

from tests.support.procs import LOOPBACK, Service, free_port, port_open, wait_until

NGINX = "/usr/sbin/nginx"

_HEAD = """\
daemon off;
master_process on;
worker_processes {workers};
user {user};
pid {root}/nginx.pid;
error_log {root}/error.log warn;

events {{
    worker_connections {connections};
}}

http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    sendfile on;
"""

_PROXY = """\
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
    head = _HEAD.format(workers=1, user=user, root=root, connections=4096)
    return head + _PROXY.format(
        servers=servers,
        host=LOOPBACK,
        port=port,
        extra=extra,
        artifacts=artifacts.resolve(),
    )


_STATIC = """\
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
    """nginx on a free loopback port with its files in `root`; subclasses write `conf`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (root / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        self.conf = root / "nginx.conf"
        argv = [NGINX, "-p", str(root), "-c", str(self.conf), "-e", str(root / "error.log")]
        self.service = Service(argv, root / "nginx.out")

    @property
    def pid(self) -> int:
        return self.service.pid

    def start(self) -> Self:
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


class NginxProxy(Nginx):
    """nginx on a free loopback port, proxying to bin-managers on `upstream_ports`."""

    def __init__(
        self, root: Path, upstream_ports: list[int], artifacts: Path, extra: str = ""
    ) -> None:
        super().__init__(root)
        self.api = f"{self.url}/api/v1"
        # Tests keep artifacts in pytest's root-only temp dirs: the workers run as root.
        text = fleet_nginx_conf(root, self.port, upstream_ports, artifacts, "root", extra)
        self.conf.write_text(text)


class StaticNginx(Nginx):
    """nginx serving the files under `root/www` (URL path = file path), one worker a core."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.www = root / "www"
        self.www.mkdir(exist_ok=True)
        head = _HEAD.format(workers="auto", user="root", root=root, connections=1024)
        self.conf.write_text(head + _STATIC.format(host=LOOPBACK, port=self.port, www=self.www))

    def put(self, url_path: str, content: bytes | Path) -> None:
        """Serve `content` (bytes, or a file hard-linked in) at `url_path`."""
        target = self.www / url_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.hardlink_to(content)


class CacheNginx(Nginx):
    """The cluster's download cache, its whole config rendered by `ansible-proxy cluster
    nginx-config --standalone --output` with `flags` (e.g. --upstream-ca), on loopback."""

    def __init__(self, root: Path, upstream: str, *flags: str) -> None:
        super().__init__(root)
        cli = Path(sys.executable).with_name("ansible-proxy")
        argv = [str(cli), "cluster", "nginx-config", "--standalone", "--upstream", upstream]
        argv += ["--listen", f"{LOOPBACK}:{self.port}", "--cache-dir", str(root)]
        subprocess.run([*argv, *flags, "--output", str(self.conf)], check=True, timeout=60)
        # pytest's tmp dirs are 0700: the workers run as root so they can use the cache.
        argv = [NGINX, "-p", str(root), "-c", str(self.conf), "-g", "daemon off; user root;"]
        self.service = Service(argv, root / "nginx.out")


class TlsNginx(Nginx):
    """nginx terminating TLS (`cert` and `key`, PEM) on a free loopback port, passing
    everything to `upstream` (http://host:port): supervisord's inet server has no TLS."""

    def __init__(self, root: Path, upstream: str, cert: Path, key: Path) -> None:
        super().__init__(root)
        self.url = f"https://{LOOPBACK}:{self.port}"
        head = _HEAD.format(workers=1, user="root", root=root, connections=256)
        self.conf.write_text(
            head
            + f"""\
    server {{
        listen {LOOPBACK}:{self.port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass {upstream};
        }}
    }}
}}
"""
        )

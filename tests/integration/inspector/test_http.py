"""The `http` check kind: a manifest entry's `healthUrl` must answer 2xx (docs/inspector.md)."""

from __future__ import annotations

import json
import sys

from tests.integration.inspector.conftest import Host
from tests.support.procs import free_port, port_open, wait_until
from tests.support.server import BinManager
from tests.support.supervisor import Supervisord


def serving(host: Host, tag: str, port: int) -> bytes:
    """A program answering GET /healthz with 200, or 503 "sick" once its flag file exists."""
    sick = str(host.flags / f"{tag}.sick")
    return f"""#!{sys.executable}
# inspector test program with a health endpoint, version {tag}
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"sick: the database is gone" if os.path.exists({sick!r}) else b"ok"
        self.send_response(503 if body != b"ok" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", {port!r}), Health).serve_forever()
""".encode()


def test_a_health_url_answering_503_is_rolled_back(
    bin_manager: BinManager, supervisord: Supervisord, host: Host
) -> None:
    port = free_port()
    sha1, sha2 = host.install(
        bin_manager, supervisord, "web", serving(host, "1", port), serving(host, "2", port)
    )
    doc = host.manifest()
    doc["binaries"][0]["healthUrl"] = f"http://{{host}}:{port}/healthz"
    host.manifest_path.write_text(json.dumps(doc, indent=2))
    wait_until(lambda: port_open(port), 10, "version 2 to listen")

    code, answer = host.check()
    assert code == 0, answer
    assert host.service(answer, "web")["checks"]["http"] == {
        "outcome": "healthy",
        "detail": "HTTP 200",
    }

    (host.flags / "2.sick").touch()
    textfile = host.root / "inspector.prom"
    table = host.run("--textfile", str(textfile), command="check")
    assert table.returncode == 1, host.debug(table)
    header = table.stdout.splitlines()[0].split()
    assert header[:6] == ["SERVICE", "VERSION", "PROCESS", "PORT", "HTTP", "IMAGE"]
    assert "unhealthy: HTTP 503: sick: the database is gone" in table.stdout
    assert 'ansible_proxy_check_healthy{service="web",check="http"} 0' in textfile.read_text()

    code, answer = host.check()  # CHECK_FAILURES=2: the second unhealthy run rolls back
    row = host.service(answer, "web")
    assert (code, row["action"], row["rollbackTo"]) == (1, "rolled-back", sha1), answer
    assert row["checks"]["http"]["detail"] == "HTTP 503: sick: the database is gone"
    assert host.installed_sha("web") == sha1
    assert host.entry("web")["history"][sha2] == "err"
    assert host.entry("web")["healthUrl"] == f"http://{{host}}:{port}/healthz"  # kept
    wait_until(lambda: port_open(port), 10, "version 1 to listen")
    code, answer = host.check()
    assert (code, host.service(answer, "web")["checks"]["http"]["detail"]) == (0, "HTTP 200")

#!/usr/bin/python3
"""hello: the example's tiny service; build_package.py stamps ARCH and VERSION per package."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

ARCH = "@ARCH@"
VERSION = "@VERSION@"


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {ARCH} {VERSION}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: supervisor keeps the log small."""


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", int(sys.argv[1])), Hello).serve_forever()

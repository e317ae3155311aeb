"""`make demo`: the bin-manager on 127.0.0.1 with a sample release, narrated.

Everything the demo starts is recorded by PID in .demo/pids and stopped by
`make demo-stop` (this script with --stop); rerunning the demo stops the previous
one first. `--stop-at-end` (CI) stops everything once the story is told.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / ".demo"  # --dir changes it (tests run the demo in a temp dir)
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            chosen: int = sock.getsockname()[1]
            return chosen
    raise RuntimeError("no free port on 127.0.0.1")


class Demo:
    """The demo's state dir: its logs, its data, and the PIDs of what it started."""

    def __init__(self, path: Path) -> None:
        self.dir = path
        self.pids = path / "pids"

    def stop_previous(self) -> None:
        stop_previous(self.pids)

    def start(self, argv: list[str], log_name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.dir / log_name).open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        with self.pids.open("a") as pids:
            pids.write(f"{proc.pid}\n")
        return proc


def stop_previous(pids: Path) -> None:
    """End every process a previous demo recorded, by PID (its process group)."""
    if not pids.exists():
        return
    for line in pids.read_text().split():
        pid = int(line)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
            say(f"stopped process group {pid} from the previous demo")
    deadline = time.monotonic() + 10
    for line in pids.read_text().split():
        while time.monotonic() < deadline:
            try:
                os.kill(int(line), 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
    pids.unlink()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the bin-manager exited at start; its log:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    sys.exit(f"the bin-manager did not answer on {url} within 30 s; see {log}")


def sample_binary(version: str) -> bytes:
    return f"#!/bin/sh\n# demo service 'hello', {version}\nexec sleep 3600\n".encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stop", action="store_true", help="stop what the demo started")
    parser.add_argument(
        "--stop-at-end", action="store_true", help="stop everything when the story ends (CI)"
    )
    parser.add_argument("--port", type=int, default=8080, help="preferred port (default 8080)")
    parser.add_argument("--dir", type=Path, default=DEMO_DIR, help="state dir (default .demo)")
    args = parser.parse_args()
    demo = Demo(args.dir.resolve())

    demo.dir.mkdir(parents=True, exist_ok=True)
    demo.stop_previous()
    if args.stop:
        say("demo stopped")
        return 0

    token_file = demo.dir / "admin-token"
    token = secrets.token_urlsafe(24)
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    port = free_port(args.port)
    url = f"http://{HOST}:{port}"
    env = {**os.environ, "BIN_MANAGER_ADMIN_TOKEN": token}

    say(f"starting the bin-manager on {url} (SQLite and artifacts in {demo.dir}/data)")
    argv = [str(VENV_BIN / "bin-manager"), "serve", "--host", HOST, "--port", str(port)]
    argv += ["--data-dir", str(demo.dir / "data")]
    server = demo.start(argv, "bin-manager.log", env)
    wait_healthy(url, server, demo.dir / "bin-manager.log")

    binary = demo.dir / "hello-v1"
    binary.write_bytes(sample_binary("v1"))
    expected = hashlib.sha256(binary.read_bytes()).hexdigest()
    say("publishing release v1 of the bin 'hello' for x86_64")
    publish = [str(VENV_BIN / "bin-manager"), "publish", str(binary), "--name", "hello"]
    published = subprocess.run(
        [*publish, "--arch", "x86_64", "--server", url],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    say(f"published: sha256 {published} (the file hashes to {expected})")

    api = f"{url}/api/v1"
    answer = httpx.get(f"{api}/bins/hello", params={"nodeName": "demo-host", "arch": "x86_64"})
    say(f"an agent asking GET /api/v1/bins/hello is told: {answer.text}")
    latest = httpx.get(f"{api}/releases/latest/hello/sha256").text.strip()
    say(f"GET /api/v1/releases/latest/hello/sha256 answers: {latest}")

    print(
        f"""
The bin-manager is running at {url} (admin token in {token_file}).
Try:
  curl -s '{api}/bins/hello?nodeName=host-001&arch=x86_64'
  curl -s {api}/releases/latest/hello/sha256
  curl -s -o hello '{api}/download/hello?sha256={published}'
  curl -s -H "Authorization: Bearer $(cat {token_file})" {api}/admin/bins
  open {url}/docs for the API reference, {url}/metrics for Prometheus.
Stop it with: make demo-stop""",
        flush=True,
    )
    if published != expected or latest != expected:
        print("demo FAILED: the server does not answer the published sha256", file=sys.stderr)
        demo.stop_previous()
        return 1
    if args.stop_at_end:
        demo.stop_previous()
        say("demo stopped (--stop-at-end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

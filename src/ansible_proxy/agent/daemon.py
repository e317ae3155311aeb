"""`ansible-proxy daemon` (a tick every interval, with jitter) and `install-cron`."""

from __future__ import annotations

import random
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from ansible_proxy.agent.adapters.files import write_atomic
from ansible_proxy.agent.config import AgentConfig
from ansible_proxy.errors import EXIT_OK, AnsibleProxyError, ConfigError

JITTER = 0.1


def run_daemon(load: Callable[[], AgentConfig], interval: float, log_format: str) -> int:
    """Tick every `interval` seconds (+-10% jitter) until SIGTERM or SIGINT."""
    from ansible_proxy.agent.runner import run_once

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    load()  # a bad config at start is exit 2, not a daemon that silently does nothing
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.is_set():
        try:
            run_once(load(), log_format, verbose=False)
        except ConfigError as exc:  # edited config broke: say so, keep trying
            print(f"ansible-proxy daemon: {exc}", file=sys.stderr, flush=True)
        except AnsibleProxyError:
            pass  # logged by run_once; the next tick retries
        stop.wait(interval * random.uniform(1 - JITTER, 1 + JITTER))  # noqa: S311
    return EXIT_OK


def cron_line(executable: Path, config: Path | None, command: str = "run") -> str:
    flag = f" --config {config}" if config else ""
    # stdout is dropped; stderr is kept: one line per failed binary, which cron mails.
    return f"* * * * * root {executable} {command}{flag} >/dev/null\n"


def install_cron(path: Path, executable: Path, config: Path | None) -> Path:
    """Write the cron.d file (mode 0644, atomically): a run and a check per minute, as root."""
    text = (
        "# ansible-proxy: keep this host's binaries at the published version (every minute).\n"
        "# Logs go to LOG_FILE; the agent reads /etc/ansible-proxy/config itself.\n"
        "SHELL=/bin/sh\n"
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        + cron_line(executable, config)
        + "# The inspector: health checks, rolls a bad version back (docs/inspector.md).\n"
        + cron_line(executable, config, "check")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode(), mode=0o644)
    return path

"""`ansible-proxy daemon` (a tick every interval, with jitter) and `install-cron`."""

from __future__ import annotations

import random
import shlex
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from ansible_proxy.client.config import AgentConfig
from ansible_proxy.client.files import write_atomic
from ansible_proxy.errors import EXIT_OK, AnsibleProxyError, ConfigError

JITTER = 0.1


def run_daemon(load: Callable[[], AgentConfig], interval: float, log_format: str) -> int:
    """Tick every `interval` seconds (+-10% jitter) until SIGTERM or SIGINT."""
    from ansible_proxy.agent.runner import run_once  # start-up: install-cron never ticks

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    load()  # a bad config at start is exit 2, not a daemon that silently does nothing
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.is_set():
        try:
            run_once(load(), log_format, verbose=False, interval=interval * (1 + JITTER))
        except ConfigError as exc:  # edited config broke: say so, keep trying
            print(f"ansible-proxy daemon: {exc}", file=sys.stderr, flush=True)
        except AnsibleProxyError:
            pass  # logged by run_once; the next tick retries
        stop.wait(interval * random.uniform(1 - JITTER, 1 + JITTER))  # noqa: S311
    return EXIT_OK


CRON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROGRAM_NAME = "ansible-proxy"


def cron_program(executable: Path, cron_path: str = CRON_PATH) -> tuple[str, str]:
    """How cron should name `executable`, and a warning for the installer ("" if none).

    The bare name when cron's PATH finds this very program first (a /usr/local/bin link,
    pipx): a reinstall that updates the link keeps cron working. Else the absolute path.
    """
    found = shutil.which(PROGRAM_NAME, path=cron_path)
    if found is not None and _same_file(Path(found), executable):
        return PROGRAM_NAME, ""
    where = (
        f"cron's PATH finds another {PROGRAM_NAME} first ({found})"
        if found is not None
        else f"no {PROGRAM_NAME} on cron's PATH ({cron_path})"
    )
    return str(executable), (
        f"{where}: the cron lines run {executable}, so a reinstall elsewhere breaks them "
        f"until `install-cron` is run again from the new install (or link it as "
        f"/usr/local/bin/{PROGRAM_NAME} and rerun install-cron: the lines then use the name)"
    )


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.resolve().samefile(other.resolve())
    except OSError:
        return False


def cron_line(program: str, config: Path | None, command: str = "run") -> str:
    flag = f" --config {shlex.quote(str(config.absolute()))}" if config else ""
    # stdout is dropped; stderr is kept: one line per failed binary, which cron mails.
    return f"* * * * * root {shlex.quote(program)} {command}{flag} >/dev/null\n"


def _warn_on_stderr(message: str) -> None:
    print(f"ansible-proxy: warning: {message}", file=sys.stderr, flush=True)


def install_cron(
    path: Path,
    executable: Path,
    config: Path | None,
    cron_path: str = CRON_PATH,
    warn: Callable[[str], None] = _warn_on_stderr,
) -> Path:
    """Write the cron.d file (mode 0644, atomically): a run and a check per minute, as root.

    `cron_path` is the PATH line written to the file and searched for `ansible-proxy`.
    """
    program, warning = cron_program(executable, cron_path)
    if warning:
        warn(warning)
    text = (
        "# ansible-proxy: keep this host's binaries at the published version (every minute).\n"
        "# Logs go to LOG_FILE; the agent reads /etc/ansible-proxy/config itself.\n"
        "# Cron mails each line's stderr (failed deploys, config errors; never a retry) to\n"
        '# root on this host, through its MTA (without one, syslog says "No MTA installed,\n'
        '# discarding output"). To send it to your team instead, uncomment and edit:\n'
        "# MAILTO=ops@example.org\n"
        "SHELL=/bin/sh\n"
        f"PATH={cron_path}\n"
        + cron_line(program, config)
        + "# The inspector: health checks, rolls a bad version back (docs/inspector.md).\n"
        + cron_line(program, config, "check")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode(), mode=0o644)
    return path

"""The agent's log: one line per decision (bin, short sha, reason), text or JSON.

Lines go to LOG_FILE and, when stderr is a terminal, to stderr as well. Nothing here
ever receives the token: callers log names, shas and reasons only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from ansible_proxy.errors import ConfigError

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class Log:
    """Append-only decision log."""

    def __init__(
        self,
        path: Path | None,
        fmt: str = "text",
        echo: TextIO | None = None,
        min_level: str = "info",
    ) -> None:
        self.fmt = fmt
        self.echo = echo
        self.min_level = LEVELS[min_level]
        self._file: TextIO | None = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = path.open("a", encoding="utf-8", buffering=1)
            except OSError as exc:
                raise ConfigError(f"LOG_FILE {path}: cannot write: {exc.strerror}") from None

    def __call__(self, level: str, message: str, bin_name: str = "", sha: str = "") -> None:
        if LEVELS[level] < self.min_level:
            return
        now = time.time()
        if self.fmt == "json":
            record = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                "level": level,
                "pid": os.getpid(),
                "bin": bin_name,
                "sha": sha[:12],
                "message": message,
            }
            line = json.dumps(record, ensure_ascii=False)
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
            subject = f" {bin_name}@{sha[:12]}" if sha else f" {bin_name}" if bin_name else ""
            line = f"{stamp} [{os.getpid()}] {level.upper()}{subject}: {message}"
        for stream in (self._file, self.echo):
            if stream is not None:
                stream.write(line + "\n")
                stream.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def stderr_if_terminal() -> TextIO | None:
    return sys.stderr if sys.stderr.isatty() else None

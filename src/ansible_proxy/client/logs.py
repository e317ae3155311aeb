"""The agent's log: one line per decision (bin, short sha, reason), text or JSON.

Lines go to LOG_FILE and, when stderr is a terminal, to stderr as well. Nothing here
ever receives the token: callers log names, shas and reasons only. Messages may carry
server-controlled text, so one call is always exactly one line: in text format every
control character is written as a visible escape (`\\n`, `\\x1b`); JSON escapes its own.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import TextIO

from ansible_proxy.errors import ConfigError

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

# C0 (newline and tab included), DEL, C1, and Unicode's own line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    """`text` with every control character written as a visible escape: one line, inert."""
    return _CONTROL.sub(lambda m: _NAMED.get(m[0]) or _code(ord(m[0])), text)


def _code(point: int) -> str:
    return f"\\x{point:02x}" if point < 0x100 else f"\\u{point:04x}"


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


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
            # json.dumps escapes C0 itself; DEL, C1 and U+2028/9 become \uXXXX here too.
            line = _CONTROL.sub(_json_escape, json.dumps(record, ensure_ascii=False))
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
            name, short = escape_controls(bin_name), escape_controls(sha[:12])
            subject = f" {name}@{short}" if sha else f" {name}" if name else ""
            line = f"{stamp} [{os.getpid()}] {level.upper()}{subject}: {escape_controls(message)}"
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

"""The access log's handler: the lines of one event-loop pass written together.

One access-log line per request written at once was one write(2) per request, about a
fifth of a poll's CPU (more when stderr is a pipe to journald). `BufferedLines` keeps
each line and writes every line that arrived during one pass of the event loop at the
start of the next pass (loop.call_soon): an idle server writes each line at once, a busy
one writes the lines of all the requests it answered in that pass in one system call.
Lines from a thread without an event loop, and batches of `max_lines`, go out at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TextIO

DEFAULT_MAX_LINES = 256


class BufferedLines(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler whose lines (each record's message) go out once per loop pass."""

    def __init__(self, stream: TextIO, max_lines: int = DEFAULT_MAX_LINES) -> None:
        super().__init__(stream)
        self.setFormatter(logging.Formatter("%(message)s"))
        self.max_lines = max_lines
        self._lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the line (the handler's lock is held by the caller)."""
        try:
            self._keep(self.format(record))
        except Exception:
            self.handleError(record)

    def add_line(self, line: str) -> None:
        """What emit() does for a record whose message is `line`, without the record:
        the access log's (metrics.RequestLog), when this handler is all its logger has."""
        with self.lock:  # type: ignore[union-attr]
            self._keep(line)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def _keep(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) == 1:  # the first of a batch: written at the next loop pass
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop in this thread: nothing would write it
                self._write()
        elif len(self._lines) >= self.max_lines:
            self._write()

    def _write(self) -> None:
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        self.stream.write(text)
        self.stream.flush()

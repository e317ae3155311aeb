"""Deadlines for blocking calls: a limit on the whole call, whatever the peer does.

Socket timeouts (the HTTP client's, xmlrpc's) apply to each socket operation, so a peer
that sends one byte a second, or a stopped supervisord that accepted the connection,
holds a call for ever. `deadline(seconds)` arms a one-shot ITIMER_REAL; when it fires
inside the block, the blocking call raises `DeadlineExceeded` (a socket timeout, so
libraries that map socket timeouts report it as theirs). Deadlines nest: the soonest one fires.

Main thread only: the agent and the inspector are single-threaded. Elsewhere (a test
runner's worker thread, say) a deadline is a no-op and only the per-read timeouts hold.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class DeadlineExceeded(socket.timeout):
    """A deadline passed while the block was still running.

    A `socket.timeout`, so that code reading a socket when it fires reports a timeout
    (http_pool.py maps socket.timeout to HttpTimeout): on Python 3.10 and newer that is
    TimeoutError itself, on 3.9 a distinct subclass of OSError, which would be reported
    as a broken connection instead.
    """


class Deadline:
    """One armed deadline; `reset()` starts its window again (a download that progresses)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds

    def reset(self) -> None:
        self.expires = time.monotonic() + self.seconds
        if self in _active:
            _arm()


_active: list[Deadline] = []
_previous_handler: Any = None
_previous_timer: tuple[float, float] = (0.0, 0.0)  # someone else's alarm: (due at, interval)


def _arm() -> None:
    if not _active:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return
    left = min(d.expires for d in _active) - time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if not _active:
        return
    now = time.monotonic()
    expired = [d for d in _active if d.expires <= now + 0.001]
    if not expired:
        _arm()  # an earlier deadline was reset meanwhile
        return
    # One-shot: an expired outer deadline fires again when the inner block ends.
    raise DeadlineExceeded(f"no answer within {expired[0].seconds:g} s")


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Raise DeadlineExceeded from the block's blocking call once `seconds` have passed."""
    global _previous_handler, _previous_timer
    current = Deadline(seconds)
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield current
        return
    if not _active:
        _previous_handler = signal.signal(signal.SIGALRM, _on_alarm)
        left, interval = signal.getitimer(signal.ITIMER_REAL)
        _previous_timer = (time.monotonic() + left if left else 0.0, interval)
    _active.append(current)
    _arm()
    try:
        yield current
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _active.remove(current)
        if _active:
            _arm()
        else:
            signal.signal(signal.SIGALRM, _previous_handler or signal.SIG_DFL)
            _previous_handler = None
            due, interval = _previous_timer
            if due:  # give the outer alarm back what is left of it (at least a moment)
                signal.setitimer(signal.ITIMER_REAL, max(due - time.monotonic(), 0.001), interval)

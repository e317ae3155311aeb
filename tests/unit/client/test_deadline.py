"""The whole-call deadline: it ends a blocked call, nests, resets, and gives back an alarm."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from ansible_proxy.client.deadline import DeadlineExceeded, deadline


@pytest.fixture
def silent() -> Iterator[socket.socket]:
    """A connected socket whose peer never says anything: recv() blocks for ever."""
    left, right = socket.socketpair()
    try:
        yield left
    finally:
        left.close()
        right.close()


def test_a_blocked_call_ends_with_deadline_exceeded(silent: socket.socket) -> None:
    with pytest.raises(DeadlineExceeded), deadline(0.2):
        silent.recv(1)


def test_a_call_that_finishes_in_time_is_left_alone(silent: socket.socket) -> None:
    with deadline(5):
        assert silent.send(b"") == 0
    time.sleep(0.1)  # no late alarm afterwards


def _inner_then_outer(silent: socket.socket) -> None:
    with deadline(0.6):
        with pytest.raises(DeadlineExceeded), deadline(0.1):
            silent.recv(1)  # the inner one ends this
        silent.recv(1)  # and the outer one this


def test_the_inner_deadline_fires_and_the_outer_still_holds(silent: socket.socket) -> None:
    with pytest.raises(DeadlineExceeded):
        _inner_then_outer(silent)


def test_reset_starts_the_window_again(silent: socket.socket) -> None:
    def wait_reset_wait() -> None:
        with deadline(0.3) as window:
            time.sleep(0.2)
            window.reset()
            silent.recv(1)

    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        wait_reset_wait()
    assert time.monotonic() - start >= 0.45  # 0.2 s, then a whole new 0.3 s window


def test_someone_elses_alarm_is_given_back() -> None:
    fired: list[int] = []

    def outer(signum: int, frame: FrameType | None) -> None:
        fired.append(signum)

    previous = signal.signal(signal.SIGALRM, outer)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with deadline(5):
            pass
        assert signal.getsignal(signal.SIGALRM) is outer
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 0.5
        time.sleep(0.8)
        assert fired == [signal.SIGALRM]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

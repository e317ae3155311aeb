"""The download line an operator sees when running `ansible-proxy run` on a terminal."""

from __future__ import annotations

import pytest

from ansible_proxy.agent.upgrade import _Bar


def test_the_line_counts_up_once_per_percent_and_ends_the_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bar = _Bar("web")
    total = 4 * 2**20
    for done in (0, 1, 2**20, 2**20 + 5, 2 * 2**20, total):
        bar.update(done, total)
    err = capsys.readouterr().err
    assert err.count("\r") == 4  # 0 %, 25 %, 50 %, 100 %: a repeated percent is not redrawn
    assert err.endswith("\rdownload web: 100 % of 4.0 MiB\n")


def test_without_a_length_it_shows_what_arrived(capsys: pytest.CaptureFixture[str]) -> None:
    _Bar("web").update(3 * 2**20, None)
    assert capsys.readouterr().err == "\rdownload web: 3.0 MiB"

"""errors.py: one order of exit codes for every command that does several things."""

from __future__ import annotations

from ansible_proxy.errors import (
    EXIT_CONFIG,
    EXIT_DEPLOY,
    EXIT_OK,
    EXIT_RETRY,
    EXIT_UNKNOWN,
    describe,
    worst_exit,
)


def test_the_worst_outcome_wins_in_either_order() -> None:
    ladder = [EXIT_OK, EXIT_UNKNOWN, EXIT_RETRY, EXIT_DEPLOY, EXIT_CONFIG]
    for i, better in enumerate(ladder):
        for worse in ladder[i:]:
            assert worst_exit(better, worse) == worse
            assert worst_exit(worse, better) == worse


def test_nothing_done_is_ok_and_an_unlisted_code_counts_as_a_failed_deploy() -> None:
    assert worst_exit() == EXIT_OK
    assert worst_exit(EXIT_RETRY, 99) == 99
    assert worst_exit(99, EXIT_CONFIG) == EXIT_CONFIG


def test_describe_names_the_file_and_the_reason() -> None:
    err = FileNotFoundError(2, "No such file or directory", "/var/lib/x")
    assert describe(err) == "/var/lib/x: No such file or directory"
    assert describe(ValueError("bad")) == "unexpected ValueError: bad"

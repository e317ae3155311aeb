"""The command tables' parser (ansible_proxy/commands.py): shared flags in the same places,
a group's verbs taking them late without undoing what came before the verb, and each
command's function imported only when it runs."""

from __future__ import annotations

import argparse
import sys

import pytest

from ansible_proxy.commands import Command, add_commands, arg, lazy

SHARED = (arg("--server"), arg("--json", action="store_true"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tool")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(
        sub,
        [
            Command("pause", "pause", print, (arg("bin"),)),
            Command("keygen", "no server", print, (arg("file"),), shared=False),
            Command(
                "nodes",
                "a group",
                verbs=(Command("list", "list", print), Command("show", "one", print, (arg("n"),))),
            ),
        ],
        SHARED,
    )
    return parser


@pytest.mark.parametrize(
    "argv",
    [
        ["pause", "web", "--server", "S", "--json"],
        ["pause", "--server", "S", "--json", "web"],
        ["nodes", "list", "--server", "S", "--json"],
        ["nodes", "--server", "S", "--json", "list"],
        ["nodes", "--server", "S", "show", "n1", "--json"],
    ],
)
def test_shared_flags_are_taken_after_the_command_or_the_verb(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    assert (args.server, args.json, args.func) == ("S", True, print)


def test_a_verb_keeps_what_was_given_before_it_and_defaults_stay() -> None:
    args = _parser().parse_args(["nodes", "--server", "S", "list"])
    assert (args.server, args.json) == ("S", False)
    assert vars(_parser().parse_args(["nodes", "list"]))["server"] is None


def test_a_command_not_shared_refuses_the_shared_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["keygen", "k", "--server", "S"])
    assert "unrecognized arguments: --server S" in capsys.readouterr().err


def test_a_lazy_function_is_imported_when_called() -> None:
    sys.modules.pop("colorsys", None)
    to_hls = lazy("colorsys", "rgb_to_hls")
    assert "colorsys" not in sys.modules
    assert to_hls(1.0, 0.0, 0.0) == (0.0, 0.5, 1.0)
    assert "colorsys" in sys.modules

"""Command lines as tables, for `ansible-proxy` and `bin-manager` alike.

Each command is one `Command` row: its name, help, flags and the function that runs it,
registered in pipx's style (`add_parser(…).set_defaults(func=…)`). A function named
`lazy("module", "function")` is imported only when its command runs, so a command line
starts as fast as its lightest command needs (the agent runs every minute on every host).

The flags every command of a CLI shares (`ansible-proxy --config`, `bin-manager --server`)
are given once, and every command marked `shared` takes them in the same places: after
the command, and for a group (`nodes list`, `rollout status`) after the group's name or
after the verb alike.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple


class Arg(NamedTuple):
    """One `add_argument(*names, **options)`; `group` titles its section in --help."""

    names: tuple[str, ...]
    options: dict[str, Any]
    group: str | None = None


def arg(*names: str, group: str | None = None, **options: Any) -> Arg:
    """An argument as `ArgumentParser.add_argument` takes it."""
    return Arg(names, options, group)


@dataclass(frozen=True)
class Command:
    """One command (or a group of verbs) of a command line."""

    name: str
    help: str
    run: Callable[..., Any] | None = None  # None for a group: its verbs run
    args: Sequence[Arg] = ()
    description: str | None = None
    epilog: str | None = None
    shared: bool = True  # takes the CLI's shared flags
    verbs: Sequence[Command] = ()  # a group's commands (`nodes list`)
    # Cron runs it: an "exit 75, try again next tick" is logged, not printed (no mail every
    # minute while a server restarts). Every other command says why it stopped.
    cron: bool = False


def lazy(module: str, function: str) -> Callable[..., Any]:
    """`module.function`, imported when first called (start-up time: see the docstring)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), function)(*args, **kwargs)

    call.__qualname__ = call.__name__ = f"{module}:{function}"
    return call


def flags(shared: Sequence[Arg], late: bool = False) -> argparse.ArgumentParser:
    """A parent parser holding `shared`. `late`: for a group's verbs, where a flag left out
    keeps what was given before the verb (argparse would reset it to its default)."""
    parser = argparse.ArgumentParser(add_help=False)
    sections: dict[str, Any] = {}
    for item in shared:
        target: Any = parser
        if item.group is not None:
            target = sections.setdefault(item.group, parser.add_argument_group(item.group))
        options = {**item.options, "default": argparse.SUPPRESS} if late else item.options
        target.add_argument(*item.names, **options)
    return parser


def add_commands(
    sub: Any,
    commands: Sequence[Command],
    shared: Sequence[Arg] = (),
    **parser_options: Any,
) -> None:
    """Register `commands` on the subparsers `sub`: each one's parser and flags, its
    function as `args.func`, and `args.cron` as the table says."""
    kit = _Kit(flags(shared), flags(shared, late=True), bool(shared), parser_options)
    for command in commands:
        _register(sub, command, [kit.own] if command.shared and kit.any else [], kit)


class _Kit(NamedTuple):
    own: argparse.ArgumentParser  # the shared flags
    late: argparse.ArgumentParser  # the same, for after a group's verb
    any: bool  # there are shared flags
    options: dict[str, Any]  # for every add_parser


def _register(
    sub: Any, command: Command, parents: list[argparse.ArgumentParser], kit: _Kit
) -> None:
    parser = sub.add_parser(
        command.name,
        parents=parents,
        help=command.help,
        description=command.description,
        epilog=command.epilog,
        **kit.options,
    )
    for item in command.args:
        parser.add_argument(*item.names, **item.options)
    if not command.verbs:
        parser.set_defaults(func=command.run, cron=command.cron)
        return
    verbs = parser.add_subparsers(dest="verb", required=True)
    for verb in command.verbs:
        # A group that took the shared flags gives them to its verbs again, late.
        takes = [kit.late] if parents else [kit.own] if kit.any else []
        _register(verbs, verb, takes if verb.shared else [], kit)

"""keycardctl's --help as a newcomer reads it: every command, argument and option says what it is for."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

from keycardd.cli import build_parser


def _parsers(
    parser: argparse.ArgumentParser, path: str = "keycardctl"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def _undescribed(parser: argparse.ArgumentParser, path: str) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            described = {choice.dest for choice in action._choices_actions if choice.help}
            yield from (f"{path} {name}" for name in action.choices if name not in described)
        elif action.help is None or not str(action.help).strip():
            yield f"{path} {'/'.join(action.option_strings) or action.dest}"


def test_every_command_argument_and_option_has_a_help_string() -> None:
    missing = [item for path, parser in _parsers(build_parser()) for item in _undescribed(parser, path)]
    assert missing == []


def test_the_walk_reaches_the_commands_the_issue_named() -> None:
    """The tree walk above must see nested commands, or it would pass vacuously."""
    paths = {path for path, _ in _parsers(build_parser())}
    assert {"keycardctl policy show", "keycardctl policy validate", "keycardctl explain", "keycardctl doctor"} <= paths


def test_policy_show_help_describes_its_file_argument() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keycardd.cli", "policy", "show", "--help"], capture_output=True, text=True, check=True
    )
    file_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("file"))
    assert len(file_line.split()) > 1, result.stdout

"""Helpers shared by the keycardctl command modules."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Protocol


class CliError(Exception):
    """A user-facing failure: the message is printed as one sentence and the process exits non-zero."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Subcommands(Protocol):
    """The part of `argparse._SubParsersAction` the command modules use."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def count_of(number: int, noun: str, plural: str | None = None) -> str:
    """`1 policy`, `2 policies`: counts read as English in human output."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")

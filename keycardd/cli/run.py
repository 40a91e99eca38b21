"""keycardctl run commands (to be built)."""

from __future__ import annotations

from keycardd.cli._common import Subcommands


def register(commands: Subcommands) -> None:
    """No commands yet."""

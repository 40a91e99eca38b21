"""keycardctl agent ...: Keycard CLI-compatible agent commands (`agent policy`, `agent hook`)."""

from __future__ import annotations

import argparse

from keycardd.cli._common import Subcommands
from keycardd.cli.policy import active_sources, print_sources


def register(commands: Subcommands) -> None:
    agent = commands.add_parser("agent", help="agent commands compatible with Keycard's CLI")
    actions = agent.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    policy = actions.add_parser("policy", help="print the active Cedar policy")
    policy.set_defaults(handler=_policy)


def _policy(args: argparse.Namespace) -> int:
    print_sources(active_sources())
    return 0

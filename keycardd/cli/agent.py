"""keycardctl agent ...: Keycard CLI-compatible agent commands (`agent policy`, `agent hook`)."""

from __future__ import annotations

import argparse

from keycardd.cli._common import Subcommands
from keycardd.cli.policy import active_sources, print_sources
from keycardd.shim import keycard_hook


def register(commands: Subcommands) -> None:
    agent = commands.add_parser("agent", help="agent commands compatible with Keycard's CLI")
    actions = agent.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    policy = actions.add_parser("policy", help="print the active Cedar policy")
    policy.set_defaults(handler=_policy)
    hook = actions.add_parser(
        "hook",
        help="run as an agent hook (what `keycard agent hook claude` does); prefer the native keycard-hook shim",
    )
    hook.add_argument(
        "agent", nargs="?", choices=["claude", "cursor", "codex", "gemini"], help="the agent whose hook this is"
    )
    hook.add_argument("--claude", dest="legacy_agent", action="store_const", const="claude", help=argparse.SUPPRESS)
    hook.add_argument("--cursor", dest="legacy_agent", action="store_const", const="cursor", help=argparse.SUPPRESS)
    hook.add_argument("--timeout-ms", type=int, help="time budget before failing closed (default 2000)")
    hook.add_argument("--fail-open", metavar="EVENTS", help="comma-separated events that pass when keycardd is down")
    hook.add_argument("--no-autostart", action="store_true", help="do not start keycardd when it is not running")
    hook.set_defaults(handler=_hook)


def _policy(args: argparse.Namespace) -> int:
    print_sources(active_sources())
    return 0


def _hook(args: argparse.Namespace) -> int:
    """The same code path as the Python shim, so both behave identically (one conformance suite covers both)."""
    argv = [args.agent or args.legacy_agent or "claude"]
    if args.timeout_ms:
        argv += ["--timeout-ms", str(args.timeout_ms)]
    if args.fail_open:
        argv += ["--fail-open", args.fail_open]
    if args.no_autostart:
        argv.append("--no-autostart")
    code: int = keycard_hook.main(argv)
    return code

"""keycardctl run [--zone Z] -- COMMAND...: run a command in a secure session (Keycard CLI-compatible)."""

from __future__ import annotations

import argparse

import anyio

from keycardd.cli._common import CliError, Subcommands
from keycardd.cli._zone import add_zone_flags, zone_config
from keycardd.credentials.session_run import SessionError, run_session


def register(commands: Subcommands) -> None:
    run = commands.add_parser("run", help="run a command with fresh credentials in a secure session")
    add_zone_flags(run)
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise CliError("nothing to run: keycardctl run -- COMMAND [ARGS...]")
    config = zone_config(args)
    try:
        code: int = anyio.run(run_session, config, command)
    except SessionError as exc:
        raise CliError(str(exc)) from None
    return code

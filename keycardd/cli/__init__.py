"""`keycardctl`: the human's tool. Each command group lives in its own module and registers its subcommands here."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from keycardd import __version__
from keycardd.cli import agent, auth, credential, dev, policy, run, service, setup, status
from keycardd.cli._common import CliError
from keycardd.config import ConfigError

_GROUPS = (status, policy, agent, auth, credential, run, setup, service, dev)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keycardctl", description="Inspect and drive the keycardd daemon.")
    parser.add_argument("--version", action="version", version=f"keycardctl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in _GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user mistakes become one sentence on stderr and a non-zero exit, never a traceback."""
    args = build_parser().parse_args(argv)
    # Library warnings (retries and the like) would interleave with the one-sentence answer; failures that matter
    # reach the user as a CliError. KEYCARDCTL_LOG_LEVEL=INFO shows them for debugging.
    logging.basicConfig(level=os.environ.get("KEYCARDCTL_LOG_LEVEL", "ERROR").upper(), format="%(name)s: %(message)s")
    try:
        code: int = args.handler(args)
    except CliError as exc:
        print(f"keycardctl: {exc}", file=sys.stderr)
        return exc.exit_code
    except ConfigError as exc:  # a bad setting in the environment (KEYCARDD_CASE_INSENSITIVE_PATHS, ...)
        print(f"keycardctl: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`keycardctl decisions --follow | head`): stop quietly, as Unix tools do, and keep
        # the interpreter's final flush from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return code


if __name__ == "__main__":
    sys.exit(main())

"""keycardctl service install|uninstall|start|stop|status: keycardd under systemd (Linux) or launchd (macOS)."""

from __future__ import annotations

import argparse

from keycardd.cli._common import CliError, Subcommands
from keycardd.install.service import Manager, ServiceError


def register(commands: Subcommands) -> None:
    service = commands.add_parser("service", help="run keycardd as a user service")
    actions = service.add_subparsers(dest="service_command", metavar="ACTION", required=True)
    for action, help_text in (
        ("install", "write the unit (or LaunchAgent) for this user and start it"),
        ("uninstall", "stop and remove it"),
        ("start", "start the service"),
        ("stop", "stop the service"),
        ("status", "show the service manager's view"),
    ):
        actions.add_parser(action, help=help_text).set_defaults(handler=_run, action=action)


def _run(args: argparse.Namespace) -> int:
    try:
        manager = Manager.detect()
        if args.action == "install":
            for path in manager.install():
                print(f"wrote {path}")
            print(f"keycardd is enabled under {manager.kind}")
        elif args.action == "uninstall":
            for path in manager.uninstall():
                print(f"removed {path}")
        elif args.action == "start":
            manager.start()
        elif args.action == "stop":
            manager.stop()
        else:
            return _status(manager)
    except ServiceError as exc:
        raise CliError(str(exc)) from None
    return 0


def _status(manager: Manager) -> int:
    """The manager's own report, then one line; exit 0 when running and 3 otherwise (LSB, as systemctl does)."""
    status = manager.status()
    if status.report.strip():
        print(status.report.rstrip())
    if status.state == "not installed":
        print("keycardd is not installed as a service: run `keycardctl service install`")
    else:
        print(f"keycardd is {status.state} under {manager.kind}")
    return 0 if status.state == "running" else 3

"""keycardctl dev zone: a local Keycard zone on loopback, to try zone policy without an account."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from keycardd.cli._common import CliError, Subcommands


def register(commands: Subcommands) -> None:
    dev = commands.add_parser("dev", help="development helpers")
    actions = dev.add_subparsers(dest="dev_command", metavar="ACTION", required=True)
    zone = actions.add_parser("zone", help="serve a local Keycard zone (metadata, JWKS, signed policy sets)")
    zone.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    zone.add_argument("--zone-id", default="devzone")
    zone.add_argument("--policy", type=Path, action="append", default=[], help="Cedar file to publish (repeatable)")
    zone.set_defaults(handler=_zone)


def _zone(args: argparse.Namespace) -> int:
    try:
        from keycardd.devzone.server import DevZone  # noqa: PLC0415 - starlette/uvicorn are an optional extra
    except ImportError:
        raise CliError("the dev zone needs the devzone extra: pip install 'keycardd[devzone]'") from None
    try:
        policies = {path.stem: path.read_text(encoding="utf-8") for path in args.policy}
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    with DevZone(zone_id=args.zone_id, port=args.port) as zone:
        if policies:
            version = zone.state.policy_zone.publish("dev", policies)
            print(f"published policy set 'dev' version {version.number} ({', '.join(policies)})")
        print(f"dev zone {args.zone_id} at {zone.issuer}; point keycardd at it with:")
        print(f"  ZONE={args.zone_id} ISSUER_URL={zone.issuer} KEYCARD_API_BASE_URL={zone.issuer} keycardd")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped")
    return 0

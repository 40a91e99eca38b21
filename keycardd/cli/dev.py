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
    zone.add_argument("--zone-id", default="devzone", help="the zone id it serves (default devzone)")
    zone.add_argument("--policy", type=Path, action="append", default=[], help="Cedar file to publish (repeatable)")
    zone.add_argument(
        "--page-size", type=int, default=2, help="largest page of every list (default 2, so clients must paginate)"
    )
    zone.add_argument("--no-auth", action="store_true", help="serve the Management API without credentials")
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
    if args.page_size < 1:
        raise CliError("--page-size must be at least 1")
    with DevZone(zone_id=args.zone_id, port=args.port, page_size=args.page_size, require_auth=not args.no_auth) as zone:
        if policies:
            version = zone.state.policy_zone.publish("dev", policies)
            print(f"published policy set 'dev' version {version.number} ({', '.join(policies)})")
        accounts = zone.state.accounts
        print(f"dev zone {args.zone_id} at {zone.issuer}, {args.page_size} items per list page; run keycardd with:")
        print(f"  ZONE={args.zone_id} ISSUER_URL={zone.issuer} KEYCARD_API_BASE_URL={zone.issuer} \\")
        if args.no_auth:
            print("  keycardd")
        else:
            print(f"  KEYCARD_API_API_KEY={accounts.api_key} keycardd")
            print(f"or as a service account: KEYCARD_API_CLIENT_ID={accounts.client_id} "
                  f"KEYCARD_API_CLIENT_SECRET={accounts.client_secret}")  # fmt: skip
            print(f"or signed in (keycardctl auth signin) with ORG={accounts.org_id}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped")
    return 0

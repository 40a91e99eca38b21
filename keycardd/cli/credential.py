"""keycardctl credential read|info (Keycard CLI-compatible)."""

from __future__ import annotations

import argparse
import json
import sys

import anyio

from keycardd.cli._common import CliError, Subcommands
from keycardd.cli._zone import add_zone_flags, zone_config
from keycardd.credentials.client import CredentialClient
from keycardd.credentials.errors import CredentialDeniedError, NotSignedInError, OAuthError


def register(commands: Subcommands) -> None:
    credential = commands.add_parser("credential", help="credentials minted from your Keycard session")
    actions = credential.add_subparsers(dest="credential_command", metavar="ACTION", required=True)
    read = actions.add_parser("read", help="print an access token for a resource on stdout")
    add_zone_flags(read)
    read.add_argument("resource", metavar="URI", help="the resource the token is for")
    read.add_argument("--scope", action="append", default=[], help="scope to request (repeatable)")
    read.set_defaults(handler=_read)
    info = actions.add_parser("info", help="list the credentials `keycardctl run` would provide")
    add_zone_flags(info)
    info.add_argument("--json", action="store_true", help="JSON Lines, as Keycard's CLI prints them")
    info.set_defaults(handler=_info)


def _read(args: argparse.Namespace) -> int:
    config = zone_config(args)

    async def read() -> str:
        client = CredentialClient(config)
        try:
            return (await client.issue(args.resource, args.scope)).token
        finally:
            await client.aclose()

    try:
        token = anyio.run(read)
    except (CredentialDeniedError, NotSignedInError) as exc:
        raise CliError(str(exc)) from None
    except OAuthError as exc:
        raise CliError(f"no credential for {args.resource}: {exc.code} ({exc.action(args.resource)})") from None
    sys.stdout.write(token + "\n")
    return 0


def _info(args: argparse.Namespace) -> int:
    config = zone_config(args)
    if not config.credentials:  # on stderr: stdout stays the (empty) list that scripts read
        where = config.path or "keycard.toml (none found here)"
        print(f"no credentials are configured: add [[credentials.default]] entries to {where}", file=sys.stderr)
    for entry in config.credentials:
        if args.json:
            print(json.dumps({"env_var": entry.env_var, "resource": entry.resource}))
        else:
            print(f"{entry.env_var or '-':<24} {entry.resource}")
    return 0

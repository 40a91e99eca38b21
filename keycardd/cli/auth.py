"""keycardctl auth signin|whoami|signout|resource (Keycard CLI-compatible)."""

from __future__ import annotations

import argparse
import contextlib

import anyio
import httpx

from keycardd.cli._common import CliError, Subcommands
from keycardd.cli._zone import add_zone_flags, zone_config
from keycardd.credentials.broker import CredentialBroker
from keycardd.credentials.errors import NotSignedInError, OAuthError
from keycardd.credentials.oauth import ZoneOAuth
from keycardd.credentials.signin import remember_email, signin
from keycardd.credentials.store import TokenStore
from keycardd.paths import UnsafePathError


def register(commands: Subcommands) -> None:
    auth = commands.add_parser("auth", help="sign in to a Keycard zone")
    actions = auth.add_subparsers(dest="auth_command", metavar="ACTION", required=True)
    signin_cmd = actions.add_parser("signin", help="sign in (OAuth code flow with PKCE in your browser)")
    add_zone_flags(signin_cmd)
    signin_cmd.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    signin_cmd.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the sign-in")
    signin_cmd.set_defaults(handler=_signin)
    whoami = actions.add_parser("whoami", help="show who is signed in")
    add_zone_flags(whoami)
    whoami.set_defaults(handler=_whoami)
    signout = actions.add_parser("signout", help="forget (and revoke) the stored tokens")
    add_zone_flags(signout)
    signout.set_defaults(handler=_signout)
    resource = actions.add_parser("resource", help="check (and obtain) access to resources up front")
    add_zone_flags(resource)
    resource.add_argument("uris", nargs="+", metavar="URI", help="a resource to check access to (one or more)")
    resource.set_defaults(handler=_resource)


def _signin(args: argparse.Namespace) -> int:
    config = zone_config(args)
    try:
        tokens = anyio.run(lambda: signin(config, open_browser=not args.no_browser, timeout_s=args.timeout))
    except (OAuthError, NotSignedInError, UnsafePathError) as exc:  # a state directory keycardd will not use
        raise CliError(f"sign-in failed: {exc}") from None
    print(f"signed in to zone {config.zone_id} as {tokens.email or tokens.subject or 'unknown user'}")
    return 0


def _whoami(args: argparse.Namespace) -> int:
    config = zone_config(args)
    try:
        tokens = TokenStore(config).load()
    except NotSignedInError as exc:
        raise CliError(str(exc)) from None
    print(f"{tokens.email or '-'} (subject {tokens.subject or '-'}) on zone {config.zone_id}")
    return 0


def _signout(args: argparse.Namespace) -> int:
    config = zone_config(args)
    store = TokenStore(config)
    try:
        tokens = store.load()
    except NotSignedInError:
        print(f"not signed in to zone {config.zone_id}")
        return 0

    async def revoke() -> None:
        async with httpx.AsyncClient() as client:
            oauth = ZoneOAuth(config, client)
            for token in (tokens.refresh_token, tokens.access_token):
                if token:
                    with contextlib.suppress(OAuthError, httpx.HTTPError):  # signing out must work offline too
                        await oauth.revoke(token)

    anyio.run(revoke)
    store.delete()
    remember_email(None)
    print(f"signed out of zone {config.zone_id}")
    return 0


def _resource(args: argparse.Namespace) -> int:
    config = zone_config(args)

    async def check() -> list[tuple[str, str | None]]:
        try:
            TokenStore(config).load()
        except NotSignedInError:
            await signin(config)
        broker = CredentialBroker(config)
        results: list[tuple[str, str | None]] = []
        try:
            for uri in args.uris:
                try:
                    await broker.issue(uri)
                    results.append((uri, None))
                except OAuthError as exc:
                    results.append((uri, f"{exc} ({exc.action(uri)})"))
        finally:
            await broker.aclose()
        return results

    failed = 0
    for uri, problem in anyio.run(check):
        print(f"{'ok  ' if problem is None else 'FAIL'} {uri}" + (f": {problem}" if problem else ""))
        failed += problem is not None
    return 1 if failed else 0

"""`keycardctl auth signin`: OAuth 2.1 authorization code with PKCE (S256) and a `state` check, redirected to a
one-shot HTTP listener on loopback (`OIDC_CALLBACK_PORT`, 0 for any free port)."""

from __future__ import annotations

import os
import secrets
import socket
import webbrowser
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import h11
import httpx

from keycardd import paths
from keycardd.config import KeycardConfig
from keycardd.credentials.errors import OAuthError
from keycardd.credentials.oauth import ZoneOAuth, pkce_pair
from keycardd.credentials.store import TokenStore, UserTokens

PAGE = b"<html><body><p>Signed in to keycardd. You can close this tab.</p></body></html>"


async def _one_callback(listener: anyio.abc.SocketListener) -> dict[str, str]:
    """Serve exactly one GET on the loopback listener and return its query parameters."""
    async with await listener.accept() as stream:
        connection = h11.Connection(h11.SERVER)
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await stream.receive())
                continue
            if isinstance(event, h11.Request):
                break
            raise OAuthError("invalid_callback", "the browser sent something other than a request")
        query = {key: values[0] for key, values in parse_qs(urlsplit(event.target.decode()).query).items()}
        response = h11.Response(
            status_code=200, headers=[("content-type", "text/html"), ("content-length", str(len(PAGE)))]
        )
        await stream.send(
            connection.send(response) + connection.send(h11.Data(data=PAGE)) + connection.send(h11.EndOfMessage())
        )
        return query


async def signin(
    config: KeycardConfig,
    *,
    open_browser: bool = True,
    timeout_s: float = 300.0,
    announce: Callable[[str], None] = print,
) -> UserTokens:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", int(os.environ.get("OIDC_CALLBACK_PORT") or 0)))
    sock.listen(4)
    listener = await anyio.abc.SocketListener.from_socket(sock)
    async with listener, httpx.AsyncClient() as client:
        bound = sock.getsockname()[1]
        redirect_uri = f"http://127.0.0.1:{bound}/callback"
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        oauth = ZoneOAuth(config, client)
        url = await oauth.authorization_url(redirect_uri, challenge, state)
        announce(f"Sign in to zone {config.zone_id} in your browser:\n  {url}")
        if open_browser:
            webbrowser.open(url)
        with anyio.move_on_after(timeout_s) as scope:
            query = await _one_callback(listener)
        if scope.cancelled_caught:
            raise OAuthError("timeout", f"no sign-in completed within {timeout_s:.0f} s")
        if query.get("state") != state:
            raise OAuthError("invalid_state", "the sign-in answer does not belong to this sign-in (state mismatch)")
        if "code" not in query:
            raise OAuthError(query.get("error", "access_denied"), query.get("error_description", "sign-in refused"))
        token = await oauth.redeem_code(query["code"], verifier, redirect_uri)
        info = await oauth.userinfo(token.access_token)
    tokens = UserTokens(
        access_token=token.access_token,
        refresh_token=token.refresh_token,
        expires_at=token.expires_at,
        email=info.get("email"),
        subject=info.get("sub"),
    )
    TokenStore(config).save(tokens)
    remember_email(tokens.email)
    return tokens


def remember_email(email: str | None) -> None:
    """Tell the daemon who the principal is (`User::"<email>"`); not a secret, so a plain 0600 file."""
    path = paths.state_dir() / "whoami"
    if email is None:
        path.unlink(missing_ok=True)
        return
    paths.ensure_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(email + "\n")

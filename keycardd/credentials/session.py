"""The per-session agent socket (`KEYCARD_SOCKET`): Keycard's agent protocol, so Keycard SDK clients work unchanged.

HTTP/1.1 on a Unix socket (0600 in a 0700 directory, same-uid peers only), one endpoint:
`POST /keycard.agent.v1.AgentService/IssueJWT` with `{"resource", "scopes", "workload"}` answers
`{"token", "expiresAt"}`; failures are Connect JSON `{"code", "message"}` with the matching HTTP status.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import anyio.abc
import h11

from keycardd.credentials.broker import IssuedCredential
from keycardd.credentials.errors import CredentialDeniedError, NotSignedInError, OAuthError
from keycardd.server import peer_uid

log = logging.getLogger(__name__)

ISSUE_JWT = "/keycard.agent.v1.AgentService/IssueJWT"
MAX_BODY = 64 * 1024
CONNECT_STATUS = {
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "unauthenticated": 401,
    "invalid_argument": 400,
    "unavailable": 503,
    "unimplemented": 404,
}

Issuer = Callable[[str, Sequence[str]], Awaitable[IssuedCredential]]
"""Issue a credential for (resource, scopes) in this session."""


def connect_error(exc: Exception) -> tuple[str, str]:
    """(Connect code, message) for a failure to issue; messages name what to do, never a token."""
    if isinstance(exc, CredentialDeniedError):
        return "permission_denied", str(exc)
    if isinstance(exc, NotSignedInError):
        return "unauthenticated", str(exc)
    if isinstance(exc, OAuthError):
        if exc.code == "access_denied":
            return "permission_denied", f"the zone refused: {exc.description}"
        if exc.code == "insufficient_authorization":
            return "unauthenticated", exc.description or "authorize the resource with `keycardctl auth resource`"
        if exc.code == "invalid_client":
            return "failed_precondition", "keycardd is not a registered client of this zone"
        if exc.status == 429 or exc.code == "slow_down":
            return "resource_exhausted", "the zone is rate limiting; try again shortly"
        if exc.code == "invalid_request":
            return "invalid_argument", exc.description
        return "unavailable", f"the zone failed ({exc.code})"
    return "unavailable", "keycardd could not issue the credential"


async def serve_session(listener: anyio.abc.SocketListener, issue: Issuer) -> None:
    """Serve the session socket until cancelled."""
    uid = os.getuid()

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            if peer_uid(stream.extra(anyio.abc.SocketAttribute.raw_socket)) != uid:
                log.warning("refused a session-socket connection from another uid")
                return
            with anyio.move_on_after(30):
                await _serve_http(stream, issue)

    await listener.serve(handle)


async def _serve_http(stream: anyio.abc.SocketStream, issue: Issuer) -> None:
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_BODY)
    while True:
        request, body = await _read_request(stream, connection)
        if request is None:
            return
        status, document = await _answer(request, body, issue)
        payload = json.dumps(document).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(payload)))]
        await stream.send(connection.send(h11.Response(status_code=status, headers=headers)))
        await stream.send(connection.send(h11.Data(data=payload)) + connection.send(h11.EndOfMessage()))
        if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
            return
        connection.start_next_cycle()


async def _read_request(stream: anyio.abc.SocketStream, connection: h11.Connection) -> tuple[h11.Request | None, bytes]:
    request, body = None, b""
    while True:
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError:
            return None, b""
        if event is h11.NEED_DATA:
            try:
                connection.receive_data(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                connection.receive_data(b"")
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                return None, b""
        elif isinstance(event, h11.EndOfMessage):
            return request, body
        else:  # ConnectionClosed, PAUSED
            return None, b""


async def _answer(request: h11.Request, body: bytes, issue: Issuer) -> tuple[int, dict[str, Any]]:
    if request.method != b"POST" or request.target.split(b"?")[0] != ISSUE_JWT.encode():
        return 404, {"code": "unimplemented", "message": f"only POST {ISSUE_JWT} is served here"}
    params = _issue_params(body)
    if params is None:
        return 400, {"code": "invalid_argument", "message": 'send {"resource": "<uri>", "scopes": [...]}'}
    resource, scopes = params
    try:
        credential = await issue(resource, scopes)
    except (CredentialDeniedError, NotSignedInError, OAuthError) as exc:
        code, message = connect_error(exc)
        return CONNECT_STATUS[code], {"code": code, "message": message}
    return 200, {"token": credential.token, "expiresAt": credential.expires_at_rfc3339}


def _issue_params(body: bytes) -> tuple[str, list[str]] | None:
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return None
    if not isinstance(params, dict):
        return None
    resource, scopes = params.get("resource"), params.get("scopes") or []
    if not isinstance(resource, str) or not resource or not isinstance(scopes, list):
        return None
    if not all(isinstance(scope, str) for scope in scopes):
        return None
    return resource, scopes

"""Getting a credential from wherever it is cheapest: the running daemon (shared cache), else a local broker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio.to_thread

from keycardd.client import Client, DaemonUnavailableError
from keycardd.config import KeycardConfig
from keycardd.credentials.broker import CredentialBroker, IssuedCredential
from keycardd.credentials.errors import raise_failure
from keycardd.credentials.policy import policy_check
from keycardd.engine import Engine, EntityUid, PolicyError
from keycardd.identity import resolve_principal_email
from keycardd.policy_store import LocalSources
from keycardd.protocol import CredentialRequest, DocumentReply, ErrorReply


class CredentialClient:
    def __init__(self, config: KeycardConfig) -> None:
        self.config = config
        self._broker: CredentialBroker | None = None

    async def issue(self, resource: str, scopes: Sequence[str] = (), session_id: str | None = None) -> IssuedCredential:
        request = CredentialRequest(resource=resource, scopes=tuple(scopes), session_id=session_id)
        try:
            reply = await anyio.to_thread.run_sync(_ask_daemon, request)
        except DaemonUnavailableError:
            return await self._local().issue(resource, scopes, session_id)
        if "error" in reply:
            raise_failure(reply["error"])
        return IssuedCredential(str(reply["token"]), float(reply["expires_at"]))

    def _local(self) -> CredentialBroker:
        if self._broker is None:
            try:
                engine: Engine | None = Engine.compile(LocalSources.from_environment().read())
            except PolicyError:
                engine = None
            check = policy_check(lambda: engine, EntityUid("User", resolve_principal_email()))
            self._broker = CredentialBroker(self.config, policy_check=check)
        return self._broker

    async def aclose(self) -> None:
        if self._broker is not None:
            await self._broker.aclose()


def _ask_daemon(request: CredentialRequest) -> dict[str, Any]:
    with Client(timeout_s=30) as client:
        reply = client.request(request)
    if isinstance(reply, ErrorReply):
        if reply.message.startswith("no Keycard zone is configured"):
            raise DaemonUnavailableError(reply.message)  # that daemon has no zone: ask locally instead
        return {"error": {"kind": "oauth", "code": "unavailable", "message": reply.message, "status": None}}
    assert isinstance(reply, DocumentReply)
    return reply.body

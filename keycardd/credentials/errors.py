"""The credential errors, kept apart from the HTTP and keyring code so the daemon can name them without loading it
(and how the daemon passes them to clients over its socket)."""

from __future__ import annotations

from typing import Any

PERMANENT_ERRORS = frozenset({"access_denied", "insufficient_authorization", "invalid_client"})


class OAuthError(Exception):
    """The zone refused or failed; `permanent` errors are not retried, and `action` says what the user can do."""

    def __init__(self, code: str, description: str, *, status: int | None = None) -> None:
        self.code, self.description, self.status = code, description, status
        super().__init__(f"{code}: {description}" if description else code)

    @property
    def permanent(self) -> bool:
        return self.code in PERMANENT_ERRORS

    def action(self, resource: str) -> str:
        if self.code == "insufficient_authorization":
            return f"authorize it first: keycardctl auth resource {resource}"
        if self.code == "access_denied":
            return "the zone's policy refuses this credential"
        if self.code == "invalid_client":
            return "keycardd is not a registered client of this zone"
        return "try again later"


class NotSignedInError(Exception):
    """No tokens are stored for this zone; the message says how to sign in."""


class CredentialDeniedError(Exception):
    """Local policy refuses this credential to this session."""


def failure_document(exc: Exception) -> dict[str, Any]:
    """How the daemon reports a failure to issue, so the client can raise the same error."""
    if isinstance(exc, CredentialDeniedError):
        return {"kind": "denied", "message": str(exc)}
    if isinstance(exc, NotSignedInError):
        return {"kind": "not_signed_in", "message": str(exc)}
    if isinstance(exc, OAuthError):
        return {"kind": "oauth", "code": exc.code, "message": exc.description, "status": exc.status}
    return {
        "kind": "oauth",
        "code": "unavailable",
        "message": "keycardd could not issue the credential",
        "status": None,
    }


def raise_failure(document: dict[str, Any]) -> None:
    if document.get("kind") == "denied":
        raise CredentialDeniedError(str(document.get("message")))
    if document.get("kind") == "not_signed_in":
        raise NotSignedInError(str(document.get("message")))
    raise OAuthError(str(document.get("code")), str(document.get("message") or ""), status=document.get("status"))

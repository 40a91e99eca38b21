"""Zone errors, apart from the HTTP and JOSE code so the daemon can name them without loading it."""

from __future__ import annotations

REASONS = (
    "unreachable",
    "http",
    "auth",
    "pagination",
    "signature",
    "manifest",
    "bundle",
    "discovery",
    "policy",
    "unexpected",
)
"""What a rejected sync can be blamed on; `status` and `keycardctl reload` show it before the message."""


class ZoneError(Exception):
    """Zone policy was rejected or could not be fetched; `reason` (one of REASONS) and the message say why."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnknownKeyError(ZoneError):
    """The attestation names a key id the cached JWKS does not have (refetch it once: keys rotate)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="signature")

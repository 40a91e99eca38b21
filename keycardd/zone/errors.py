"""Zone errors, apart from the HTTP and JOSE code so the daemon can name them without loading it."""

from __future__ import annotations


class ZoneError(Exception):
    """Zone policy was rejected or could not be fetched; the message says which and why."""


class UnknownKeyError(ZoneError):
    """The attestation names a key id the cached JWKS does not have (refetch it once: keys rotate)."""

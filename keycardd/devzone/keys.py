"""The dev zone's signing keys: RS256 keys with ids, the JWKS that publishes them, and flattened JWS signing."""

from __future__ import annotations

import secrets
from typing import Any

from joserfc import jws
from joserfc.jwk import RSAKey


class ZoneKeys:
    """One active RS256 key (more after `rotate`); all public keys stay in the JWKS, as in a real rotation."""

    def __init__(self) -> None:
        self.keys: list[RSAKey] = []
        self.rotate()

    @property
    def active(self) -> RSAKey:
        return self.keys[-1]

    def rotate(self) -> RSAKey:
        key = RSAKey.generate_key(2048, parameters={"kid": f"kc-{secrets.token_hex(6)}", "alg": "RS256", "use": "sig"})
        self.keys.append(key)
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in self.keys]}

    def sign(self, payload: bytes, *, kid: str | None = None, key: RSAKey | None = None) -> dict[str, str]:
        """A flattened JWS (RFC 7515 §7.2.2) over `payload`; `kid`/`key` overrides exist to forge bad ones."""
        signer = key or self.active
        header = {"alg": "RS256", "kid": kid or str(signer.kid)}
        signed = jws.serialize_json({"protected": header}, payload, signer)
        return {"protected": str(signed["protected"]), "payload": str(signed["payload"]),
                "signature": str(signed["signature"])}  # fmt: skip

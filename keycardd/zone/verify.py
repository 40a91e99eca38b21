"""Verifying a policy set version before any of it is trusted.

The version carries a JWS (flattened JSON, RS256 today, EdDSA when the header says so) whose payload is the RFC 8785
canonical `policy_set_attestation` statement, signed with a key from the zone's JWKS. The statement binds the zone,
the policy set, the version number and `manifest_sha`; the manifest binds each policy's sha256; so a verified
version pins every byte of policy text. Verification never depends on an optional field being present.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import rfc8785
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import FlattenedJSONSerialization

from keycardd.zone.errors import UnknownKeyError, ZoneError

ALGORITHMS = ("RS256", "EdDSA")


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def manifest_sha(manifest: Mapping[str, Any]) -> str:
    """sha256 (hex) of the RFC 8785 canonical manifest."""
    return hashlib.sha256(rfc8785.dumps(manifest)).hexdigest()


def verify_version(document: Mapping[str, Any], keys: KeySet, *, zone_id: str, policy_set_id: str) -> None:
    """Raise `ZoneError` unless `document` (a PolicySetVersion) is attested by the zone for this set and version."""
    attestation = document.get("attestation")
    if not isinstance(attestation, dict) or not all(
        isinstance(attestation.get(part), str) for part in ("protected", "payload", "signature")
    ):
        raise ZoneError("the policy set version has no JWS attestation")
    try:
        header = json.loads(_b64url(attestation["protected"]))
    except ValueError:
        raise ZoneError("the attestation's protected header is not base64url JSON") from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if algorithm not in ALGORITHMS or not isinstance(kid, str):
        raise ZoneError(f"the attestation must name an allowed alg ({', '.join(ALGORITHMS)}) and a kid")
    if not any(key.kid == kid for key in keys.keys):
        raise UnknownKeyError(f"the attestation is signed with key {kid!r}, which the zone's JWKS does not list")
    try:
        flattened: FlattenedJSONSerialization = {
            "protected": attestation["protected"],
            "payload": attestation["payload"],
            "signature": attestation["signature"],
        }
        verified = jws.deserialize_json(flattened, keys, algorithms=[algorithm])
    except (JoseError, ValueError) as exc:
        raise ZoneError(f"the attestation's signature does not verify ({type(exc).__name__})") from None
    payload = bytes(verified.payload)
    statement = json.loads(payload)
    if rfc8785.dumps(statement) != payload:
        raise ZoneError("the attestation's payload is not RFC 8785 canonical JSON")
    expected = {"type": "policy_set_attestation", "v": 1, "zone_id": zone_id, "policy_set_id": policy_set_id,
                "policy_set_version": document.get("version")}  # fmt: skip
    for field, value in expected.items():
        if statement.get(field) != value:
            raise ZoneError(f"the attestation's {field} is {statement.get(field)!r}, expected {value!r}")
    if "key_id" in statement and statement["key_id"] != kid:
        raise ZoneError("the attestation's key_id does not match the key that signed it")
    manifest = document.get("manifest")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("entries"), list):
        raise ZoneError("the policy set version has no manifest")
    if not (statement.get("manifest_sha") == document.get("manifest_sha") == manifest_sha(manifest)):
        raise ZoneError("manifest_sha does not match the attested manifest")


def verify_contents(manifest: Mapping[str, Any], policies: Mapping[str, str]) -> None:
    """Every manifest entry's sha256 must match the policy text fetched for it, and nothing else may be fetched."""
    entries = {entry.get("policy_id"): entry.get("sha") for entry in manifest["entries"] if isinstance(entry, dict)}
    if set(entries) != set(policies):
        raise ZoneError("the fetched policies do not match the manifest's entries")
    for policy_id, text in policies.items():
        if hashlib.sha256(text.encode()).hexdigest() != entries[policy_id]:
            raise ZoneError(f"policy {policy_id} does not match its sha256 in the attested manifest")

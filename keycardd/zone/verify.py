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
from collections.abc import Mapping, Sequence
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


def manifest_digests(manifest: Mapping[str, Any]) -> set[str]:
    """The digests `manifest_sha` may be: "Hex-encoded SHA-256 of the canonicalized manifest" (keycard-ts
    `PolicySetVersion`) does not say which canonical form, so the sha256 of the RFC 8785 manifest, of its `entries`
    array alone, or of the manifest with entries in `(policy_id, policy_version_id)` order.
    Each covers every entry's policy id, version id and sha, so accepting any of them binds the same content."""
    entries = list(manifest.get("entries", []))
    ordered = sorted(entries, key=lambda entry: (str(entry.get("policy_id")), str(entry.get("policy_version_id"))))
    forms = ({**manifest}, entries, {**manifest, "entries": ordered})
    return {hashlib.sha256(_canonical(form, "the manifest")).hexdigest() for form in forms}


def _canonical(value: Any, what: str) -> bytes:
    """RFC 8785 bytes; numbers JCS cannot represent (huge integers, NaN) are the zone's fault, not a crash."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise ZoneError(f"{what} cannot be canonicalized (RFC 8785): {exc}", reason="manifest") from None


def _hex_digest(value: object) -> str | None:
    return value.lower().removeprefix("sha256:") if isinstance(value, str) else None


def verify_version(document: Mapping[str, Any], keys: KeySet, *, zone_id: str, policy_set_id: str) -> None:
    """Raise `ZoneError` unless `document` (a PolicySetVersion) is attested by the zone for this set and version."""
    attestation = document.get("attestation")
    if not isinstance(attestation, dict) or not all(
        isinstance(attestation.get(part), str) for part in ("protected", "payload", "signature")
    ):
        raise ZoneError("the policy set version has no JWS attestation", reason="signature")
    try:
        header = json.loads(_b64url(attestation["protected"]))
    except ValueError:
        raise ZoneError("the attestation's protected header is not base64url JSON", reason="signature") from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if algorithm not in ALGORITHMS or not isinstance(kid, str):
        raise ZoneError(
            f"the attestation must name an allowed alg ({', '.join(ALGORITHMS)}) and a kid", reason="signature"
        )
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
        raise ZoneError(
            f"the attestation's signature does not verify ({type(exc).__name__})", reason="signature"
        ) from None
    payload = bytes(verified.payload)
    try:
        statement = json.loads(payload)
    except ValueError:
        raise ZoneError("the attestation's payload is not JSON", reason="signature") from None
    if not isinstance(statement, dict):
        raise ZoneError("the attestation's payload is not a JSON object", reason="signature")
    if _canonical(statement, "the attestation's payload") != payload:
        raise ZoneError("the attestation's payload is not RFC 8785 canonical JSON", reason="signature")
    if not isinstance(document.get("version"), int):
        raise ZoneError("the policy set version has no version number", reason="manifest")
    expected = {"type": "policy_set_attestation", "v": 1, "zone_id": zone_id, "policy_set_id": policy_set_id,
                "policy_set_version": document.get("version")}  # fmt: skip
    for field, value in expected.items():
        if statement.get(field) != value:
            raise ZoneError(
                f"the attestation's {field} is {statement.get(field)!r}, expected {value!r}", reason="signature"
            )
    if "key_id" in statement and statement["key_id"] != kid:
        raise ZoneError("the attestation's key_id does not match the key that signed it", reason="signature")
    manifest = document.get("manifest")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("entries"), list):
        raise ZoneError("the policy set version has no manifest", reason="manifest")
    if not all(isinstance(entry, dict) for entry in manifest["entries"]):
        raise ZoneError("the policy set version's manifest has an entry that is not an object", reason="manifest")
    attested = _hex_digest(statement.get("manifest_sha"))
    if attested is None or attested != _hex_digest(document.get("manifest_sha")):
        raise ZoneError("the version's manifest_sha is not the one its attestation signs", reason="manifest")
    if attested not in manifest_digests(manifest):
        raise ZoneError("manifest_sha does not match the attested manifest", reason="manifest")


def verify_contents(manifest: Mapping[str, Any], items: Sequence[Any]) -> dict[str, str]:
    """The Cedar text of each policy the attested manifest pins, from the version's listed `PolicyVersion` items.

    The item shape is keycard-ts `PolicyVersion` (src/resources/zones/policies/versions.ts): `id` is the policy
    version id, `policy_id`, `sha`, and `cedar_raw`, populated with `format=cedar`. Every manifest entry must be
    listed exactly once (across all pages), under the `policy_version_id` the entry pins, with text whose sha256 is
    the entry's `sha`; anything else listed is refused.
    """
    entries: dict[str, Mapping[str, Any]] = {}
    for entry in manifest["entries"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("policy_id"), str):
            raise ZoneError("a manifest entry has no policy_id", reason="manifest")
        entries[entry["policy_id"]] = entry
    policies: dict[str, str] = {}
    for item in items:
        policy_id = item.get("policy_id") if isinstance(item, dict) else None
        if not isinstance(policy_id, str):
            raise ZoneError("a listed policy version has no policy_id", reason="manifest")
        if policy_id in policies:
            raise ZoneError(f"policy {policy_id} is listed twice", reason="manifest")
        entry = entries.get(policy_id)
        if entry is None:
            raise ZoneError(
                f"the zone lists policy {policy_id}, which the attested manifest does not pin", reason="manifest"
            )
        if item.get("id") != entry.get("policy_version_id"):
            raise ZoneError(f"policy {policy_id} is listed at version {item.get('id')!r}, the attested manifest pins "
                            f"{entry.get('policy_version_id')!r}", reason="manifest")  # fmt: skip
        text = item.get("cedar_raw")
        if not isinstance(text, str):
            raise ZoneError(f"policy {policy_id} came without its Cedar text (cedar_raw)", reason="manifest")
        if hashlib.sha256(text.encode()).hexdigest() != _hex_digest(entry.get("sha")):
            raise ZoneError(f"policy {policy_id} does not match its sha256 in the attested manifest", reason="manifest")
        policies[policy_id] = text
    missing = sorted(set(entries) - set(policies))
    if missing:
        raise ZoneError(
            f"the zone did not list policies the attested manifest pins: {', '.join(missing)}", reason="manifest"
        )
    return policies

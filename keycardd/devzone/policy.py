"""The policy side of the dev zone: policy sets, signed versions, activation, shadowing, and ways to tamper.

Shapes follow Keycard's Management API (`/zones/{zone}/policy-sets...`, `PolicySetVersion` with a JWS
`attestation` whose payload is the RFC 8785 canonical `policy_set_attestation` statement). Where the API reference
is silent (the body of `.../versions/{id}/policies`), the shape is `{"items": [{"policy_id", "policy_version_id",
"cedar"}]}`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785

from keycardd.devzone.keys import ZoneKeys
from keycardd.zone.bundle import build_bundle

TAMPERINGS = ("signature", "unknown_kid", "manifest_sha", "content", "zone")
BUNDLE_TAMPERINGS = (
    "bundle_sha",
    "bundle_digest",
    "bundle_traversal",
    "bundle_duplicate",
    "bundle_link",
    "bundle_bomb",
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Version:
    id: str
    number: int
    policies: dict[str, str]
    """policy id -> Cedar text."""
    manifest: dict[str, Any]
    manifest_sha: str
    attestation: dict[str, str]


@dataclass
class PolicySet:
    id: str
    name: str
    versions: list[Version] = field(default_factory=list)
    active: Version | None = None
    shadow: Version | None = None


class PolicyZone:
    """What the dev zone serves and the admin calls that change it (tests call these directly)."""

    def __init__(self, zone_id: str, keys: ZoneKeys) -> None:
        self.zone_id = zone_id
        self.keys = keys
        self.sets: dict[str, PolicySet] = {}
        self.tampering: str | None = None
        self.not_modified = 0
        """How many list requests were answered 304 (tests check the daemon sends If-None-Match)."""
        self.bundle: dict[str, str] | None = None
        """The calling user's bundle policies by public id; None answers 404 (no user bundle)."""

    def publish(self, set_name: str, policies: dict[str, str], *, activate: bool = True) -> Version:
        policy_set = next((s for s in self.sets.values() if s.name == set_name), None)
        if policy_set is None:
            policy_set = PolicySet(id=f"ps_{secrets.token_hex(6)}", name=set_name)
            self.sets[policy_set.id] = policy_set
        entries = [{"policy_id": pid, "policy_version_id": f"pv_{sha256_hex(text.encode())[:12]}",
                    "sha": sha256_hex(text.encode())} for pid, text in sorted(policies.items())]  # fmt: skip
        manifest = {"entries": entries}
        version = Version(
            id=f"psv_{secrets.token_hex(6)}",
            number=len(policy_set.versions) + 1,
            policies=dict(policies),
            manifest=manifest,
            manifest_sha=sha256_hex(rfc8785.dumps(manifest)),
            attestation={},
        )
        version.attestation = self._attest(policy_set, version, self.zone_id)
        policy_set.versions.append(version)
        if activate:
            policy_set.active = version
        return version

    def activate(self, version: Version) -> None:
        self._set_of(version).active = version

    def set_shadow(self, version: Version | None, policy_set_name: str | None = None) -> None:
        if version is not None:
            self._set_of(version).shadow = version
        else:
            for policy_set in self.sets.values():
                if policy_set_name in (None, policy_set.name):
                    policy_set.shadow = None

    def _set_of(self, version: Version) -> PolicySet:
        return next(s for s in self.sets.values() if version in s.versions)

    def _attest(self, policy_set: PolicySet, version: Version, zone_id: str, **sign: Any) -> dict[str, str]:
        statement = {"type": "policy_set_attestation", "v": 1, "zone_id": zone_id, "policy_set_id": policy_set.id,
                     "policy_set_version": version.number, "manifest_sha": version.manifest_sha,
                     "key_id": sign.get("kid") or str(self.keys.active.kid), "status": "created",
                     "attested_at": datetime.now(UTC).isoformat(), "attested_by": "devzone"}  # fmt: skip
        return self.keys.sign(rfc8785.dumps(statement), **sign)

    # ---- what the HTTP routes return ---------------------------------------------------------------------------

    def list_sets(self) -> dict[str, Any]:
        items = []
        for policy_set in self.sets.values():
            active, shadow = policy_set.active, policy_set.shadow
            items.append({"id": policy_set.id, "name": policy_set.name, "zone_id": self.zone_id,
                          "target_type": "zone", "owner_type": "customer", "active": active is not None,
                          "active_version": active.number if active else None,
                          "active_version_id": active.id if active else None,
                          "mode": "active" if active else None,
                          "shadow_version": shadow.number if shadow else None,
                          "shadow_version_id": shadow.id if shadow else None})  # fmt: skip
        return {"items": items, "pagination": {"after_cursor": None, "before_cursor": None}}

    def version_document(self, set_id: str, version_id: str) -> dict[str, Any] | None:
        policy_set = self.sets.get(set_id)
        version = next((v for v in policy_set.versions if v.id == version_id), None) if policy_set else None
        if policy_set is None or version is None:
            return None
        document: dict[str, Any] = {"id": version.id, "policy_set_id": set_id, "version": version.number,
                    "schema_version": "2026-03-16", "manifest": version.manifest,
                    "manifest_sha": version.manifest_sha, "active": policy_set.active is version,
                    "attestation": version.attestation}  # fmt: skip
        if self.tampering == "signature":
            signature = version.attestation["signature"]
            document["attestation"] = {
                **version.attestation,
                "signature": ("A" if signature[0] != "A" else "B") + signature[1:],
            }
        elif self.tampering == "unknown_kid":
            stranger = ZoneKeys()
            document["attestation"] = self._attest(policy_set, version, self.zone_id, key=stranger.active)
        elif self.tampering == "manifest_sha":
            document["manifest_sha"] = sha256_hex(b"something else")
        elif self.tampering == "zone":
            document["attestation"] = self._attest(policy_set, version, "another-zone")
        return document

    def version_policies(self, set_id: str, version_id: str) -> dict[str, Any] | None:
        policy_set = self.sets.get(set_id)
        version = next((v for v in policy_set.versions if v.id == version_id), None) if policy_set else None
        if version is None:
            return None
        items = []
        for entry in version.manifest["entries"]:
            text = version.policies[entry["policy_id"]]
            if self.tampering == "content":
                text += "\npermit (principal, action, resource);\n"
            items.append({"policy_id": entry["policy_id"], "policy_version_id": entry["policy_version_id"],
                          "cedar": text})  # fmt: skip
        return {"items": items}

    def etag(self) -> str:
        return '"' + sha256_hex(json.dumps(self.list_sets(), sort_keys=True).encode())[:32] + '"'

    def bundle_archive(self) -> tuple[bytes, str]:
        """The user's bundle as tar+gzip and its digest (the ETag), tampered with if a bundle tampering is set."""
        policies = dict(self.bundle or {})
        tampering = self.tampering or ""
        extra: tuple[tuple[str, bytes, bytes], ...] = ()
        if tampering == "bundle_traversal":
            extra = (("policies/../../escape.cedar", tarfile.REGTYPE, b"permit (principal, action, resource);"),)
        elif tampering == "bundle_duplicate" and policies:
            first = sorted(policies)[0]
            extra = ((f"policies/{first}.cedar", tarfile.REGTYPE, b"permit (principal, action, resource);"),)
        elif tampering == "bundle_link":
            extra = (("policies/link.cedar", tarfile.SYMTYPE, b""),)
        elif tampering == "bundle_bomb":
            extra = (("policies/huge.cedar", tarfile.REGTYPE, b"\0" * (65 * 1024 * 1024)),)
        forged = None
        if tampering == "bundle_sha" and policies:
            first = sorted(policies)[0]
            forged = {first: policies[first] + "\npermit (principal, action, resource);"}
        archive, digest = build_bundle(policies, extra=extra, forged=forged)
        if tampering == "bundle_digest":
            digest = "sha256:" + "0" * 64
        return archive, digest

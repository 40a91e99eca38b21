"""The policy side of the dev zone: policy sets, signed versions, activation, shadowing, and ways to tamper.

Every shape is the one Keycard's SDK types publish, never one keycardd's client assumes (keycard-ts, Stainless-
generated from Keycard's OpenAPI spec, src/resources/zones/policy-sets/{policy-sets,versions}.ts and
src/resources/zones/policies/versions.ts):
- the policy-set listing: `PolicySetListResponse {items: PolicySetWithBinding[], pagination}`;
- a version: `PolicySetVersion` with the JWS `Attestation {protected, payload, signature}` whose payload is the
  RFC 8785 canonical `AttestationStatement`;
- a version's policies: `VersionListPoliciesResponse {items: PolicyVersion[], pagination}`, where a `PolicyVersion`
  carries its text as `cedar_raw` (`format=cedar`) and `cedar_json` (`format=json`; both when `format` is omitted);
- every list is cursor-paginated (`pages`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cedarpy
import rfc8785

from keycardd.devzone.keys import ZoneKeys
from keycardd.devzone.pages import DEFAULT_PAGE_SIZE, cursor, envelope, page
from keycardd.zone.bundle import build_bundle

TAMPERINGS = ("signature", "unknown_kid", "manifest_sha", "content", "zone", "manifest_entry")
"""`manifest_entry` rewrites a manifest entry's sha and serves matching (permit-all) text, leaving the attestation and
`manifest_sha` alone: only recomputing the manifest's digest catches it."""
PAGE_TAMPERINGS = (
    "content_last_page",
    "policy_version",
    "page_duplicate",
    "page_drop",
    "page_extra",
    "cursor_loop",
    "sets_cursor_loop",
    "sets_duplicate",
    "no_pagination",
)
"""Damage somewhere in a paginated answer: the last page's text, a stale policy version, an item listed twice, a
page skipped, an unpinned policy added, a cursor that leads back (policies or sets), a set listed twice, no
`pagination` at all."""
BUNDLE_TAMPERINGS = (
    "bundle_sha",
    "bundle_digest",
    "bundle_traversal",
    "bundle_duplicate",
    "bundle_link",
    "bundle_bomb",
)
SCHEMA_VERSION = "2026-03-16"
PERMIT_ALL = "permit (principal, action, resource);"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Version:
    id: str
    number: int
    policies: dict[str, str]
    """policy id -> Cedar text."""
    manifest: dict[str, Any]
    manifest_sha: str
    attestation: dict[str, str]
    created_at: str = field(default_factory=_now)


@dataclass
class PolicySet:
    id: str
    name: str
    versions: list[Version] = field(default_factory=list)
    active: Version | None = None
    shadow: Version | None = None
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)


class PolicyZone:
    """What the dev zone serves and the admin calls that change it (tests call these directly)."""

    def __init__(self, zone_id: str, keys: ZoneKeys, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        self.zone_id = zone_id
        self.keys = keys
        self.page_size = page_size
        """Default and largest page of every list (small, so that clients must follow cursors)."""
        self.sets: dict[str, PolicySet] = {}
        self.tampering: str | None = None
        self.manifest_form = "manifest"
        """What `manifest_sha` hashes (RFC 8785): the `manifest` or its `entries` alone. Keycard does not say; clients
        must accept both."""
        self.send_etags = True
        """False: list pages come without ETags, as from a server that does not do conditional requests."""
        self.not_modified = 0
        """How many list requests were answered 304 (tests check the daemon sends If-None-Match)."""
        self.bundle: dict[str, str] | None = None
        """The calling user's bundle policies by public id; None answers 404 (no user bundle)."""
        self._cedar_json: dict[str, Any] = {}

    def publish(self, set_name: str, policies: dict[str, str], *, activate: bool = True) -> Version:
        policy_set = next((s for s in self.sets.values() if s.name == set_name), None)
        if policy_set is None:
            policy_set = PolicySet(id=f"ps_{secrets.token_hex(6)}", name=set_name)
            self.sets[policy_set.id] = policy_set
        entries = [{"policy_id": pid, "policy_version_id": policy_version_id(pid, text),
                    "sha": sha256_hex(text.encode())} for pid, text in sorted(policies.items())]  # fmt: skip
        manifest = {"entries": entries}
        version = Version(
            id=f"psv_{secrets.token_hex(6)}",
            number=len(policy_set.versions) + 1,
            policies=dict(policies),
            manifest=manifest,
            manifest_sha=sha256_hex(rfc8785.dumps(self._hashed_form(manifest))),
            attestation={},
        )
        version.attestation = self._attest(policy_set, version, self.zone_id)
        policy_set.versions.append(version)
        policy_set.updated_at = _now()
        if activate:
            policy_set.active = version
        return version

    def _hashed_form(self, manifest: dict[str, Any]) -> Any:
        return manifest["entries"] if self.manifest_form == "entries" else manifest

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
        """keycard-ts `AttestationStatement`, RFC 8785 canonical, signed as a flattened JWS (`Attestation`)."""
        statement = {"type": "policy_set_attestation", "v": 1, "zone_id": zone_id, "policy_set_id": policy_set.id,
                     "policy_set_version": version.number, "manifest_sha": version.manifest_sha,
                     "key_id": sign.get("kid") or str(self.keys.active.kid), "status": "created",
                     "attested_at": _now(), "attested_by": "devzone"}  # fmt: skip
        return self.keys.sign(rfc8785.dumps(statement), **sign)

    # ---- what the HTTP routes return ---------------------------------------------------------------------------

    def _find(self, set_id: str, version_id: str) -> tuple[PolicySet, Version] | None:
        policy_set = self.sets.get(set_id)
        version = next((v for v in policy_set.versions if v.id == version_id), None) if policy_set else None
        return (policy_set, version) if policy_set is not None and version is not None else None

    def _set_item(self, policy_set: PolicySet) -> dict[str, Any]:
        """keycard-ts `PolicySetWithBinding` (`PolicySet` and its binding)."""
        active, shadow = policy_set.active, policy_set.shadow
        latest = policy_set.versions[-1] if policy_set.versions else None
        return {"id": policy_set.id, "created_at": policy_set.created_at, "created_by": "devzone",
                "name": policy_set.name, "owner_type": "customer", "scope_type": "zone",
                "updated_at": policy_set.updated_at, "zone_id": self.zone_id, "archived_at": None,
                "latest_version": latest.number if latest else None,
                "latest_version_id": latest.id if latest else None, "updated_by": "devzone",
                "active": active is not None, "active_version": active.number if active else None,
                "active_version_id": active.id if active else None, "mode": "active" if active else None,
                "scope_target_id": self.zone_id, "shadow_version": shadow.number if shadow else None,
                "shadow_version_id": shadow.id if shadow else None}  # fmt: skip

    def list_sets(self, query: Mapping[str, str]) -> dict[str, Any]:
        """One page of the policy-set listing, newest first (the SDK's default `order=desc`)."""
        everything = [self._set_item(policy_set) for policy_set in reversed(self.sets.values())]
        items, start, end = page(everything, query, self.page_size)
        forged = cursor(0) if self.tampering == "sets_cursor_loop" and start > 0 and end < len(everything) else None
        if self.tampering == "sets_duplicate" and start > 0 and end == len(everything):
            items.append(everything[0])
        return self._envelope(items, start, end, len(everything), after=forged)

    def list_versions(self, set_id: str, query: Mapping[str, str]) -> dict[str, Any] | None:
        """One page of a set's versions, newest first (keycard-ts `VersionListResponse`)."""
        policy_set = self.sets.get(set_id)
        if policy_set is None:
            return None
        everything = [self.version_document(set_id, version.id) for version in reversed(policy_set.versions)]
        items, start, end = page(everything, query, self.page_size)
        return self._envelope(items, start, end, len(everything))

    def version_document(self, set_id: str, version_id: str) -> dict[str, Any] | None:
        """keycard-ts `PolicySetVersion`."""
        found = self._find(set_id, version_id)
        if found is None:
            return None
        policy_set, version = found
        document: dict[str, Any] = {"id": version.id, "created_at": version.created_at, "created_by": "devzone",
                    "manifest": version.manifest, "manifest_sha": version.manifest_sha, "owner_type": "customer",
                    "policy_set_id": set_id, "schema_version": SCHEMA_VERSION, "version": version.number,
                    "active": policy_set.active is version, "archived_at": None, "archived_by": None,
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
        elif self.tampering == "manifest_entry":
            first, *rest = version.manifest["entries"]
            document["manifest"] = {"entries": [{**first, "sha": sha256_hex(PERMIT_ALL.encode())}, *rest]}
        return document

    def version_policies(self, set_id: str, version_id: str, query: Mapping[str, str]) -> dict[str, Any] | None:
        """One page of keycard-ts `PolicyVersion`s pinned by the version's manifest, in manifest order."""
        found = self._find(set_id, version_id)
        if found is None:
            return None
        _, version = found
        entries = list(version.manifest["entries"])
        items, start, end = page(entries, query, self.page_size)
        last_page = end == len(entries)
        served = [self._policy_version(entry["policy_id"], version.policies[entry["policy_id"]], query.get("format"))
                  for entry in items]  # fmt: skip
        forged = None
        tampering = self.tampering or ""
        if tampering == "manifest_entry" and start == 0 and served:
            served[0]["cedar_raw"] = PERMIT_ALL
        elif tampering == "content":
            for item in served:
                item["cedar_raw"] = (item["cedar_raw"] or "") + "\n" + PERMIT_ALL + "\n"
        elif tampering == "content_last_page" and last_page and served:
            served[-1]["cedar_raw"] = (served[-1]["cedar_raw"] or "") + "\n" + PERMIT_ALL + "\n"
        elif tampering == "policy_version" and last_page and served:
            served[-1]["id"] = f"pv_{secrets.token_hex(6)}"
        elif tampering == "page_duplicate" and last_page and start > 0:
            first = entries[0]
            served.append(self._policy_version(first["policy_id"], version.policies[first["policy_id"]], "cedar"))
        elif tampering == "page_extra" and last_page:
            served.append(self._policy_version("pol_extra", PERMIT_ALL, "cedar"))
        elif tampering == "page_drop" and start == 0 and end < len(entries):
            skip_to = end + self.page_size  # the second page is never served
            if skip_to >= len(entries):
                return self._envelope(served, start, len(entries), len(entries))  # claims to be the last page
            forged = cursor(skip_to)
        elif tampering == "cursor_loop" and start > 0 and not last_page:
            forged = cursor(0)
        return self._envelope(served, start, end, len(entries), after=forged)

    def _policy_version(self, policy_id: str, text: str, format_: str | None) -> dict[str, Any]:
        """keycard-ts `PolicyVersion`: `cedar_raw` with `format=cedar`, `cedar_json` with `format=json`, both by
        default."""
        return {"id": policy_version_id(policy_id, text), "created_at": _now(), "created_by": "devzone",
                "owner_type": "customer", "policy_id": policy_id, "schema_version": SCHEMA_VERSION,
                "sha": sha256_hex(text.encode()), "version": 1, "zone_id": self.zone_id, "archived_at": None,
                "archived_by": None, "cedar_json": self._json_of(text) if format_ != "cedar" else None,
                "cedar_raw": text if format_ != "json" else None}  # fmt: skip

    def _json_of(self, text: str) -> Any:
        """The Cedar JSON form of one policy (cedarpy), or of the whole text when it holds more than one."""
        if text not in self._cedar_json:
            try:
                document = json.loads(cedarpy.policies_to_json_str(text))
            except (ValueError, RuntimeError):
                document = None
            static = (document or {}).get("staticPolicies") or {}
            self._cedar_json[text] = next(iter(static.values())) if len(static) == 1 else document
        return self._cedar_json[text]

    def _envelope(
        self, items: list[Any], start: int, end: int, total: int, *, after: str | None = None
    ) -> dict[str, Any]:
        if self.tampering == "no_pagination":
            return {"items": items}
        return envelope(items, start, end, total, after=after)

    def page_etag(self, document: Mapping[str, Any]) -> str:
        """A strong ETag for one page of a list: it changes when anything on that page changes."""
        return '"' + sha256_hex(json.dumps(document, sort_keys=True).encode())[:32] + '"'

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


def policy_version_id(policy_id: str, text: str) -> str:
    """The same text of the same policy is the same (immutable) policy version, as Keycard reuses it."""
    return "pv_" + sha256_hex(f"{policy_id}\0{text}".encode())[:12]

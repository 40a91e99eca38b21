"""Keeping the daemon's zone policy in step with a Keycard zone, verified, and working offline.

Each sync discovers the zone (RFC 8414; the issuer must match), lists its policy sets with `If-None-Match`, and
for every active (and shadow) version fetches the version, verifies its attestation against the zone's JWKS
(refetched once on an unknown key id), fetches its policies and checks each against the attested manifest. Only a
sync in which everything verifies is installed, as a whole; anything else is rejected whole, the last verified
policy stays active, and the error is loud (log and `status`). Verified policy is cached on disk (0600) so a daemon
that restarts offline enforces it at once.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
from joserfc.jwk import KeySet

from keycardd.config import KeycardConfig, require_secure_url
from keycardd.engine import PolicyError, PolicySource
from keycardd.policy_store import PolicyStore
from keycardd.zone.bundle import MEDIA_TYPE, parse_bundle
from keycardd.zone.errors import UnknownKeyError, ZoneError
from keycardd.zone.verify import verify_contents, verify_version

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 60.0
MAX_BACKOFF_S = 300.0
TIMEOUT_S = 10.0


class _CachedSource(msgspec.Struct):
    name: str
    text: str


class _Cache(msgspec.Struct):
    """The last verified zone policy, as written to disk."""

    etag: str | None
    version: str
    active: list[_CachedSource]
    shadow: list[_CachedSource] | None = None


_SetsState = tuple[str | None, list[PolicySource], list[PolicySource] | None, list[str]]
"""(ETag, active sources, shadow sources or None, version labels) of the last verified policy-set listing."""


@dataclass
class ZoneStatus:
    source: str
    version: str | None = None
    etag: str | None = None
    last_sync: str | None = None
    last_error: str | None = None
    from_cache: bool = False


@dataclass
class ZoneSync:
    config: KeycardConfig
    store: PolicyStore
    cache_path: Path
    interval_s: float = DEFAULT_INTERVAL_S
    api_token: str | None = None
    on_change: Callable[[], object] | None = None
    """Called after new zone policy is installed and cached (the primary tells its replicas to load the cache)."""
    status_: ZoneStatus = field(init=False)
    _jwks: KeySet | None = field(default=None, init=False)
    _jwks_uri: str | None = field(default=None, init=False)
    _sets: _SetsState = field(default=(None, [], None, []), init=False)
    _bundle: tuple[str | None, list[PolicySource]] = field(default=(None, []), init=False)

    def __post_init__(self) -> None:
        self.status_ = ZoneStatus(source=self.config.issuer_url or "")

    @classmethod
    def from_config(cls, config: KeycardConfig, store: PolicyStore, cache_path: Path) -> ZoneSync | None:
        if not config.zone_id or not config.issuer_url:
            return None
        interval = float(os.environ.get("KEYCARD_ZONE_POLL_SECONDS") or DEFAULT_INTERVAL_S)
        return cls(config, store, cache_path, interval, os.environ.get("KEYCARD_API_TOKEN"))

    def status(self) -> dict[str, Any]:
        return {
            "source": self.status_.source,
            "zone_id": self.config.zone_id,
            "version": self.status_.version,
            "etag": self.status_.etag,
            "last_sync": self.status_.last_sync,
            "last_error": self.status_.last_error,
            "from_cache": self.status_.from_cache,
        }

    async def run(self) -> None:
        """Poll until cancelled; errors back off with jitter. (The daemon loads the disk cache before serving.)"""
        failures = 0
        while True:
            try:
                await self.sync_now()
                failures = 0
                delay = self.interval_s
            except (ZoneError, PolicyError):
                failures += 1
                delay = min(self.interval_s * 2**failures, MAX_BACKOFF_S)
            await anyio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not secrecy

    async def sync_now(self) -> bool:
        """One sync; True when new policy was installed. Raises `ZoneError` (recorded in status) on failure."""
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S, headers=self._headers()) as client:
                changed = await self._sync(client)
        except httpx.HTTPError as exc:
            raise self._failure(f"the zone is unreachable ({type(exc).__name__}: {exc})") from None
        except (ZoneError, PolicyError) as exc:
            raise self._failure(str(exc)) from None
        self.status_.last_sync = datetime.now(UTC).isoformat(timespec="seconds")
        self.status_.last_error = None
        return changed

    def _failure(self, message: str) -> ZoneError:
        self.status_.last_error = message
        log.error("zone policy sync failed, keeping the last verified policy: %s", message)
        return ZoneError(message)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}

    async def _sync(self, client: httpx.AsyncClient) -> bool:
        issuer = self.config.issuer_url or ""
        if self._jwks_uri is None:
            metadata = await _get_json(client, f"{issuer}/.well-known/oauth-authorization-server")
            if str(metadata.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
                raise ZoneError(f"the zone's metadata names issuer {metadata.get('issuer')!r}, expected {issuer!r}")
            jwks_uri = str(metadata.get("jwks_uri") or "")
            require_secure_url(jwks_uri, "the zone's jwks_uri")
            self._jwks_uri = jwks_uri
        sets = await self._fetch_sets(client)
        bundle = await self._fetch_bundle(client)
        if sets is None and bundle is None:
            return False  # both answered 304
        etag, active, shadow, versions = sets if sets is not None else self._sets
        bundle_etag, bundle_sources = bundle if bundle is not None else self._bundle
        all_active = [*active, *bundle_sources]
        all_shadow = [*shadow, *bundle_sources] if shadow is not None else None
        await self.store.set_zone_policies(all_active, all_shadow)
        # Only now, with everything verified and installed, are the new ETags remembered.
        self._sets, self._bundle = (etag, active, shadow, versions), (bundle_etag, bundle_sources)
        label = ", ".join([*versions, *(["bundle"] if bundle_sources else [])])
        self.status_.etag, self.status_.version, self.status_.from_cache = etag, label, False
        self._save_cache(etag, all_active, all_shadow)
        log.info("zone policy installed: %s", label or "no active policy sets")
        if self.on_change is not None:
            self.on_change()
        return True

    async def _fetch_sets(self, client: httpx.AsyncClient) -> _SetsState | None:
        """The zone's active (and shadow) policy set versions, verified; None when unchanged (304)."""
        url = f"{self.config.api_base_url}/zones/{self.config.zone_id}/policy-sets"
        etag = self._sets[0]
        response = await client.get(url, headers={"If-None-Match": etag} if etag else {})
        if response.status_code == 304:
            return None
        listing = _json(response, url)
        active: list[PolicySource] = []
        shadow: list[PolicySource] = []
        any_shadow = False
        versions = []
        for policy_set in listing.get("items", []):
            if not isinstance(policy_set, dict) or not policy_set.get("active_version_id"):
                continue
            set_sources = await self._version_sources(client, policy_set, str(policy_set["active_version_id"]))
            active += set_sources
            versions.append(f"{policy_set.get('name')}@v{policy_set.get('active_version')}")
            if policy_set.get("shadow_version_id"):
                any_shadow = True
                shadow += await self._version_sources(client, policy_set, str(policy_set["shadow_version_id"]))
            else:
                shadow += set_sources
        return response.headers.get("ETag"), active, shadow if any_shadow else None, versions

    async def _fetch_bundle(self, client: httpx.AsyncClient) -> tuple[str | None, list[PolicySource]] | None:
        """The user's policy bundle, verified; None when unchanged (304); no sources when there is none (404)."""
        url = f"{self.config.api_base_url}/policy/bundle"
        headers = {"Accept": MEDIA_TYPE}
        if self._bundle[0]:
            headers["If-None-Match"] = self._bundle[0]
        response = await client.get(url, headers=headers)
        if response.status_code == 304:
            return None
        if response.status_code == 404:
            return None if not self._bundle[1] and self._bundle[0] is None else (None, [])
        if response.status_code != 200:
            raise ZoneError(f"{url} answered HTTP {response.status_code}")
        etag = response.headers.get("ETag")
        if not etag:
            raise ZoneError("the policy bundle came without an ETag, so its digest cannot be checked")
        policies = parse_bundle(response.content, etag)
        return etag, [PolicySource(f"zone:bundle/{public_id}", text) for public_id, text in sorted(policies.items())]

    async def _version_sources(
        self, client: httpx.AsyncClient, policy_set: dict[str, Any], version_id: str
    ) -> list[PolicySource]:
        set_id = str(policy_set.get("id"))
        base = f"{self.config.api_base_url}/zones/{self.config.zone_id}/policy-sets/{set_id}/versions/{version_id}"
        document = await _get_json(client, base)
        try:
            verify_version(document, await self._keys(client), zone_id=self.config.zone_id or "", policy_set_id=set_id)
        except UnknownKeyError:
            self._jwks = None  # keys rotate: refetch once, then the key must be there
            verify_version(document, await self._keys(client), zone_id=self.config.zone_id or "", policy_set_id=set_id)
        listing = await _get_json(client, f"{base}/policies?format=cedar")
        policies = {
            str(item.get("policy_id")): str(item.get("cedar"))
            for item in listing.get("items", [])
            if isinstance(item, dict) and isinstance(item.get("cedar"), str)
        }
        verify_contents(document["manifest"], policies)
        name = f"zone:{policy_set.get('name')}@v{document.get('version')}"
        return [PolicySource(f"{name}/{policy_id}", text) for policy_id, text in sorted(policies.items())]

    async def _keys(self, client: httpx.AsyncClient) -> KeySet:
        if self._jwks is None:
            assert self._jwks_uri is not None
            try:
                self._jwks = KeySet.import_key_set(await _get_json(client, self._jwks_uri))  # type: ignore[arg-type]
            except (ValueError, TypeError, KeyError) as exc:
                raise ZoneError(f"the zone's JWKS is unusable ({exc})") from None
        return self._jwks

    def _save_cache(self, etag: str | None, active: list[PolicySource], shadow: list[PolicySource] | None) -> None:
        cache = _Cache(
            etag=etag,
            version=self.status_.version or "",
            active=[_CachedSource(source.name, source.text) for source in active],
            shadow=[_CachedSource(source.name, source.text) for source in shadow] if shadow is not None else None,
        )
        self.cache_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.cache_path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(msgspec.json.encode(cache))
        temporary.replace(self.cache_path)

    async def load_cache(self) -> None:
        """Install the last verified zone policy from disk, so a restart offline enforces it at once."""
        try:
            cache = msgspec.json.decode(self.cache_path.read_bytes(), type=_Cache)
        except FileNotFoundError:
            return
        except (OSError, msgspec.DecodeError) as exc:
            log.error("ignoring the zone policy cache %s: %s", self.cache_path, exc)
            return
        active = [PolicySource(source.name, source.text) for source in cache.active]
        shadow = [PolicySource(source.name, source.text) for source in cache.shadow] if cache.shadow else None
        try:
            await self.store.set_zone_policies(active, shadow)
        except PolicyError as exc:
            log.error("ignoring the zone policy cache %s: %s", self.cache_path, exc)
            return
        self.status_.etag, self.status_.version, self.status_.from_cache = cache.etag, cache.version, True
        log.info("zone policy from the disk cache enforced until the zone answers: %s", cache.version)


async def _get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    return _json(await client.get(url), url)


def _json(response: httpx.Response, url: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise ZoneError(f"{url} answered HTTP {response.status_code}")
    try:
        document = response.json()
    except ValueError:
        raise ZoneError(f"{url} did not answer JSON") from None
    if not isinstance(document, dict):
        raise ZoneError(f"{url} did not answer a JSON object")
    return document


__all__ = ["ZoneError", "ZoneSync"]

"""Keeping the daemon's zone policy in step with a Keycard zone, verified, and working offline.

Each sync discovers the zone (RFC 8414; the issuer must match), lists its policy sets page by page (each page with
its own `If-None-Match`), and for every active (and shadow) version fetches the version, verifies its attestation
against the zone's JWKS (refetched once on an unknown key id), lists the version's policies to the last page and
checks each against the attested manifest. Only a sync in which everything verifies is installed, as a whole;
anything else is rejected whole, the last verified policy stays active, and the error is loud (log and `status`,
with its reason: see `errors.REASONS`). Verified policy is cached on disk (0600) so a daemon that restarts offline
enforces it at once. Requests, shapes and authentication are Keycard's Management API's (`api`, `auth`).
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
from joserfc.jwk import KeySet

from keycardd.config import ConfigError, KeycardConfig, require_secure_url
from keycardd.engine import PolicyError, PolicySource
from keycardd.policy_store import PolicyStore
from keycardd.zone.api import ManagementApi, Page, describe_error
from keycardd.zone.auth import ApiAuth, NoAuth, UserToken, auth_from_environment, json_object
from keycardd.zone.bundle import MEDIA_TYPE, parse_bundle
from keycardd.zone.errors import UnknownKeyError, ZoneError
from keycardd.zone.verify import verify_contents, verify_version

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 60.0
MAX_BACKOFF_S = 300.0
TIMEOUT_S = 10.0
FETCH_CONCURRENCY = 8
"""Policy set versions fetched and verified at once (a zone of 60 sets is 120+ requests)."""


class SetStatus(msgspec.Struct):
    """What the zone published for one policy set and keycardd verified: for matching against the zone's console."""

    id: str
    name: str
    mode: str
    """`active` (enforced) or `shadow` (compared only)."""
    version_id: str
    version: int
    manifest_sha: str
    policies: int


class _CachedSource(msgspec.Struct):
    name: str
    text: str
    published_id: str | None = None


class _Cache(msgspec.Struct):
    """The last verified zone policy, as written to disk."""

    etag: str | None
    version: str
    active: list[_CachedSource]
    shadow: list[_CachedSource] | None = None
    policy_sets: list[SetStatus] = []
    bundle_etag: str | None = None


@dataclass
class _Listing:
    """The last verified policy-set listing: its pages (for If-None-Match), sources, and per-set status."""

    pages: list[Page] = field(default_factory=list)
    active: list[PolicySource] = field(default_factory=list)
    shadow: list[PolicySource] | None = None
    sets: list[SetStatus] = field(default_factory=list)


@dataclass
class ZoneStatus:
    source: str
    auth: str = "none"
    version: str | None = None
    etag: str | None = None
    bundle_etag: str | None = None
    bundle_note: str | None = None
    """Why no user bundle is read, when the API refuses it to this credential."""
    policy_sets: list[SetStatus] = field(default_factory=list)
    last_sync: str | None = None
    last_error: str | None = None
    last_error_reason: str | None = None
    requests: int = 0
    from_cache: bool = False


@dataclass
class ZoneSync:
    config: KeycardConfig
    store: PolicyStore
    cache_path: Path
    interval_s: float = DEFAULT_INTERVAL_S
    auth: ApiAuth = field(default_factory=NoAuth)
    on_change: Callable[[], object] | None = None
    """Called after new zone policy is installed and cached (the primary tells its replicas to load the cache)."""
    on_result: Callable[[ZoneStatus, bool], object] | None = None
    """Called after every sync with the status and whether new policy was installed (telemetry exports it)."""
    status_: ZoneStatus = field(init=False)
    _jwks: KeySet | None = field(default=None, init=False)
    _jwks_uri: str | None = field(default=None, init=False)
    _jwks_lock: anyio.Lock = field(default_factory=anyio.Lock, init=False)
    _listing: _Listing = field(default_factory=_Listing, init=False)
    _bundle: tuple[str | None, list[PolicySource]] = field(default=(None, []), init=False)

    def __post_init__(self) -> None:
        self.status_ = ZoneStatus(source=self.config.issuer_url or "", auth=self.auth.describe())

    @classmethod
    def from_config(
        cls,
        config: KeycardConfig,
        store: PolicyStore,
        cache_path: Path,
        env: Mapping[str, str] | None = None,
        user_token: UserToken | None = None,
    ) -> ZoneSync | None:
        """The zone sync for this configuration, or None without a zone; raises `ConfigError` on half a credential."""
        if not config.zone_id or not config.issuer_url:
            return None
        env = os.environ if env is None else env
        interval = float(env.get("KEYCARD_ZONE_POLL_SECONDS") or DEFAULT_INTERVAL_S)
        return cls(config, store, cache_path, interval, auth_from_environment(env, config, user_token))

    def status(self) -> dict[str, Any]:
        zone = self.status_
        return {
            "source": zone.source,
            "zone_id": self.config.zone_id,
            "auth": self.auth.describe(),
            "version": zone.version,
            "etag": zone.etag,
            "policy_sets": [msgspec.structs.asdict(entry) for entry in zone.policy_sets],
            "bundle": {"etag": zone.bundle_etag, "digest": _digest_of(zone.bundle_etag)} if zone.bundle_etag else None,
            "bundle_note": zone.bundle_note,
            "last_sync": zone.last_sync,
            "last_error": zone.last_error,
            "last_error_reason": zone.last_error_reason,
            "requests": zone.requests,
            "from_cache": zone.from_cache,
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
            async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
                api = ManagementApi(client, self.config.api_base_url, self.auth)
                try:
                    changed = await self._sync(client, api)
                finally:
                    self.status_.requests = api.requests
        except httpx.HTTPError as exc:
            raise self._failure(f"the zone is unreachable ({type(exc).__name__}: {exc})", "unreachable") from None
        except ZoneError as exc:
            raise self._failure(str(exc), exc.reason) from None
        except PolicyError as exc:
            raise self._failure(str(exc), "policy") from None
        except Exception as exc:  # a zone answer keycardd did not foresee must not stop the daemon: reject it
            log.exception("zone policy sync failed unexpectedly")
            raise self._failure(f"{type(exc).__name__}: {exc}", "unexpected") from None
        self.status_.last_sync = datetime.now(UTC).isoformat(timespec="seconds")
        self.status_.last_error = self.status_.last_error_reason = None
        if self.on_result is not None:
            self.on_result(self.status_, changed)
        return changed

    def _failure(self, message: str, reason: str) -> ZoneError:
        self.status_.last_error, self.status_.last_error_reason = message, reason
        log.error("zone policy sync failed (%s), keeping the last verified policy: %s", reason, message)
        if self.on_result is not None:
            self.on_result(self.status_, False)
        return ZoneError(message, reason=reason)

    async def _sync(self, client: httpx.AsyncClient, api: ManagementApi) -> bool:
        if self._jwks_uri is None:
            self._jwks_uri = await self._discover(client)
        listing = await self._fetch_sets(client, api)
        bundle = await self._fetch_bundle(api)
        if listing is None and bundle is None:
            return False  # every page and the bundle answered 304
        listing = listing if listing is not None else self._listing
        bundle_etag, bundle_sources = bundle if bundle is not None else self._bundle
        all_active = [*listing.active, *bundle_sources]
        all_shadow = [*listing.shadow, *bundle_sources] if listing.shadow is not None else None
        shadow_key = tuple(all_shadow) if all_shadow is not None else None
        # A server without ETags answers 200 every time: the same verified policy is not compiled again.
        changed = (tuple(all_active), shadow_key) != (self.store.zone_active, self.store.zone_shadow)
        if changed:
            await self.store.set_zone_policies(all_active, all_shadow)
        # Only now, with everything verified and installed, are the new ETags remembered.
        self._listing, self._bundle = listing, (bundle_etag, bundle_sources)
        label = _label(listing.sets, bool(bundle_sources))
        zone = self.status_
        zone.etag = listing.pages[0].etag if listing.pages else None
        zone.version, zone.policy_sets, zone.bundle_etag = label, listing.sets, bundle_etag
        if changed or zone.from_cache:
            zone.from_cache = False
            self._save_cache(all_active, all_shadow)
        if changed:
            log.info("zone policy installed: %s", label or "no active policy sets")
            if self.on_change is not None:
                self.on_change()
        return changed

    async def _discover(self, client: httpx.AsyncClient) -> str:
        issuer = self.config.issuer_url or ""
        metadata = await _get_json(client, f"{issuer}/.well-known/oauth-authorization-server")
        if str(metadata.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
            raise ZoneError(
                f"the zone's metadata names issuer {metadata.get('issuer')!r}, expected {issuer!r}", reason="discovery"
            )
        jwks_uri = str(metadata.get("jwks_uri") or "")
        try:
            require_secure_url(jwks_uri, "the zone's jwks_uri")
        except ConfigError as exc:
            raise ZoneError(str(exc), reason="discovery") from None
        return jwks_uri

    async def _fetch_sets(self, client: httpx.AsyncClient, api: ManagementApi) -> _Listing | None:
        """The zone's active (and shadow) policy set versions, verified; None when no page changed."""
        path = f"/zones/{self.config.zone_id}/policy-sets"
        items, pages = await api.list_if_changed(path, {}, self._listing.pages)
        if items is None:
            return None
        work: list[tuple[dict[str, Any], str, str]] = []
        seen: set[str] = set()
        for policy_set in items:
            if not isinstance(policy_set, dict) or not policy_set.get("active_version_id"):
                continue
            if str(policy_set.get("id")) in seen:
                raise ZoneError(f"the policy-set listing names set {policy_set.get('id')} twice (did it change while "
                                "being read?)", reason="pagination")  # fmt: skip
            seen.add(str(policy_set.get("id")))
            work.append((policy_set, str(policy_set["active_version_id"]), "active"))
            if policy_set.get("shadow_version_id"):
                work.append((policy_set, str(policy_set["shadow_version_id"]), "shadow"))
        verified = await self._verify_all(client, api, work)
        active: list[PolicySource] = []
        shadow: list[PolicySource] = []
        for (policy_set, _, mode), (_, sources) in zip(work, verified, strict=True):
            if mode == "active":
                active += sources
            if mode == "shadow" or not policy_set.get("shadow_version_id"):
                shadow += sources  # a set without a shadow version is compared as it is enforced
        any_shadow = any(mode == "shadow" for _, _, mode in work)
        sets = [status for status, _ in verified]
        return _Listing(pages=pages, active=active, shadow=shadow if any_shadow else None, sets=sets)

    async def _verify_all(
        self, client: httpx.AsyncClient, api: ManagementApi, work: list[tuple[dict[str, Any], str, str]]
    ) -> list[tuple[SetStatus, list[PolicySource]]]:
        """Fetch and verify every version, a few at a time; the first failure (in listing order) rejects them all."""
        results: list[tuple[SetStatus, list[PolicySource]] | Exception | None] = [None] * len(work)
        limiter = anyio.CapacityLimiter(FETCH_CONCURRENCY)

        async def one(index: int, policy_set: dict[str, Any], version_id: str, mode: str) -> None:
            async with limiter:
                try:
                    results[index] = await self._verified_version(client, api, policy_set, version_id, mode)
                except (ZoneError, httpx.HTTPError) as exc:
                    results[index] = exc

        async with anyio.create_task_group() as group:
            for index, (policy_set, version_id, mode) in enumerate(work):
                group.start_soon(one, index, policy_set, version_id, mode)
        verified = []
        for result in results:
            if isinstance(result, Exception):
                raise result
            assert result is not None
            verified.append(result)
        return verified

    async def _verified_version(
        self, client: httpx.AsyncClient, api: ManagementApi, policy_set: dict[str, Any], version_id: str, mode: str
    ) -> tuple[SetStatus, list[PolicySource]]:
        set_id = str(policy_set.get("id"))
        base = f"/zones/{self.config.zone_id}/policy-sets/{set_id}/versions/{version_id}"
        document = await api.get_json(base)
        keys = await self._keys(client, stale=None)
        zone_id = self.config.zone_id or ""
        try:
            verify_version(document, keys, zone_id=zone_id, policy_set_id=set_id)
        except UnknownKeyError:  # keys rotate: refetch once, then the key must be there
            verify_version(document, await self._keys(client, stale=keys), zone_id=zone_id, policy_set_id=set_id)
        if document.get("id") != version_id:
            raise ZoneError(f"{base} answered version {document.get('id')!r}", reason="manifest")
        items = await api.list_all(f"{base}/policies", {"format": "cedar"})
        policies = verify_contents(document["manifest"], items)
        name = f"zone:{policy_set.get('name')}@v{document.get('version')}"
        status = SetStatus(set_id, str(policy_set.get("name")), mode, version_id, int(document["version"]),
                           str(document["manifest_sha"]), len(policies))  # fmt: skip
        return status, [PolicySource(f"{name}/{pid}", text, pid) for pid, text in sorted(policies.items())]

    async def _fetch_bundle(self, api: ManagementApi) -> tuple[str | None, list[PolicySource]] | None:
        """The user's policy bundle, verified; None when unchanged (304); no sources when there is none (404)."""
        headers = {"Accept": MEDIA_TYPE}
        if self._bundle[0]:
            headers["If-None-Match"] = self._bundle[0]
        response = await api.get("/policy/bundle", headers=headers)
        if response.status_code == 304:
            return None
        if response.status_code in (404, 405, 501):  # no bundle for this user, or a server without the endpoint
            return None if not self._bundle[1] and self._bundle[0] is None else (None, [])
        if response.status_code in (401, 403) and self._bundle == (None, []):
            # The bundle is per user: a service account or API key may have none to read. Without a bundle
            # verified before, there is nothing to keep; one that was verified is never dropped this way.
            self.status_.bundle_note = f"not readable with this credential ({describe_error(response)})"
            return None
        if response.status_code != 200:
            reason = "auth" if response.status_code in (401, 403) else "http"
            raise ZoneError(f"GET /policy/bundle: {describe_error(response)}", reason=reason)
        self.status_.bundle_note = None
        etag = response.headers.get("ETag")
        if not etag:
            raise ZoneError("the policy bundle came without an ETag, so its digest cannot be checked", reason="bundle")
        policies = parse_bundle(response.content, etag)
        return etag, [PolicySource(f"zone:bundle/{pid}", text, pid) for pid, text in sorted(policies.items())]

    async def _keys(self, client: httpx.AsyncClient, *, stale: KeySet | None) -> KeySet:
        """The zone's JWKS; with `stale`, refetched unless another task already replaced that key set."""
        async with self._jwks_lock:
            if self._jwks is None or (stale is not None and self._jwks is stale):
                assert self._jwks_uri is not None
                try:
                    document = await _get_json(client, self._jwks_uri)
                    self._jwks = KeySet.import_key_set(document)  # type: ignore[arg-type]
                except (ValueError, TypeError, KeyError) as exc:
                    raise ZoneError(f"the zone's JWKS is unusable ({exc})", reason="discovery") from None
            return self._jwks

    def _save_cache(self, active: list[PolicySource], shadow: list[PolicySource] | None) -> None:
        cache = _Cache(
            etag=self.status_.etag,
            version=self.status_.version or "",
            active=[_CachedSource(source.name, source.text, source.published_id) for source in active],
            shadow=[_CachedSource(source.name, source.text, source.published_id) for source in shadow]
            if shadow is not None
            else None,
            policy_sets=self.status_.policy_sets,
            bundle_etag=self.status_.bundle_etag,
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
        active = [PolicySource(source.name, source.text, source.published_id) for source in cache.active]
        shadow = (
            [PolicySource(source.name, source.text, source.published_id) for source in cache.shadow]
            if cache.shadow
            else None
        )
        try:
            await self.store.set_zone_policies(active, shadow)
        except PolicyError as exc:
            log.error("ignoring the zone policy cache %s: %s", self.cache_path, exc)
            return
        zone = self.status_
        zone.etag, zone.version, zone.from_cache = cache.etag, cache.version, True
        zone.policy_sets, zone.bundle_etag = cache.policy_sets, cache.bundle_etag
        log.info("zone policy from the disk cache enforced until the zone answers: %s", cache.version)


def _label(sets: list[SetStatus], bundle: bool) -> str:
    """`org@v3, team@v1, bundle`: the enforced versions, for logs and `status`."""
    return ", ".join([*(f"{entry.name}@v{entry.version}" for entry in sets if entry.mode == "active"),
                      *(["bundle"] if bundle else [])])  # fmt: skip


def _digest_of(etag: str) -> str:
    """The bundle digest an ETag carries (`"sha256:..."`, possibly weak)."""
    return etag.removeprefix("W/").strip('"')


async def _get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """Discovery documents (metadata, JWKS): unauthenticated, from the zone issuer rather than the API."""
    response = await client.get(url)
    if response.status_code != 200:
        raise ZoneError(f"GET {url}: {describe_error(response)}", reason="discovery")
    return json_object(response, url, reason="discovery")


__all__ = ["ZoneError", "ZoneSync"]

"""The credential broker: short-lived, resource-scoped tokens minted by RFC 8693 exchange from the user's session.

Tokens are cached per (user, resource, scopes) until 30 s before they expire, and refreshed in the background
before that, so a caller never waits on the network for a live credential. Concurrent requests for one key share
one exchange. Permanent refusals (`access_denied`, `insufficient_authorization`, `invalid_client`) are not
retried; 429, 5xx and network errors are, with backoff. Local policy gets a say first:
`Action::"Agent::CredentialIssue"` on `Resource::"<uri>"`. Tokens live in memory only and never reach a log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import httpx

from keycardd.config import KeycardConfig
from keycardd.credentials.errors import CredentialDeniedError, NotSignedInError, OAuthError
from keycardd.credentials.oauth import ZoneOAuth
from keycardd.credentials.store import TokenStore, UserTokens

log = logging.getLogger(__name__)

EXPIRY_MARGIN_S = 30.0
"""A cached token is never handed out in its last 30 s."""
REFRESH_LEAD_S = 60.0
"""The background refresher renews a token this long before the margin."""
RETRIES = 3


@dataclass(frozen=True)
class IssuedCredential:
    token: str
    expires_at: float
    """Wall-clock expiry, as reported to clients."""
    deadline: float = float("inf")
    """The same moment on the broker's monotonic clock: what caching decides on, so wall-clock jumps neither serve
    an expired token nor throw away a live one."""

    def __repr__(self) -> str:
        return f"IssuedCredential(expires_at={self.expires_at})"

    @property
    def expires_at_rfc3339(self) -> str:
        return datetime.fromtimestamp(self.expires_at, UTC).isoformat().replace("+00:00", "Z")


PolicyCheck = Callable[[str, tuple[str, ...], "str | None"], "str | None"]
"""(resource, scopes, session id) -> None when permitted, else the reason it is denied."""


@dataclass
class CredentialBroker:
    config: KeycardConfig
    policy_check: PolicyCheck | None = None
    clock: Callable[[], float] = time.monotonic
    _cache: dict[tuple[str, str, tuple[str, ...]], IssuedCredential] = field(default_factory=dict, init=False)
    _inflight: dict[tuple[str, str, tuple[str, ...]], anyio.Event] = field(default_factory=dict, init=False)
    _errors: dict[tuple[str, str, tuple[str, ...]], Exception] = field(default_factory=dict, init=False)
    _client: httpx.AsyncClient | None = field(default=None, init=False)
    _oauth: ZoneOAuth | None = field(default=None, init=False)
    _user: UserTokens | None = field(default=None, init=False)
    exchanges: int = field(default=0, init=False)

    def _zone(self) -> ZoneOAuth:
        if self._oauth is None:
            self._client = httpx.AsyncClient()
            self._oauth = ZoneOAuth(self.config, self._client)
        return self._oauth

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def issue(self, resource: str, scopes: Sequence[str] = (), session_id: str | None = None) -> IssuedCredential:
        """A live token for `resource`; raises CredentialDeniedError, NotSignedInError or OAuthError."""
        if not resource:
            raise OAuthError("invalid_request", "the resource is empty")
        wanted = tuple(sorted(set(scopes)))
        if self.policy_check is not None:
            refusal = self.policy_check(resource, wanted, session_id)
            if refusal is not None:
                raise CredentialDeniedError(refusal)
        user = await self._user_tokens()
        key = (user.subject or user.email or "", resource, wanted)
        cached = self._cache.get(key)
        if cached is not None and cached.deadline - EXPIRY_MARGIN_S > self.clock():
            return cached
        return await self._exchange_once(key)

    async def _exchange_once(self, key: tuple[str, str, tuple[str, ...]]) -> IssuedCredential:
        """Single flight: the first caller exchanges, the others wait for its result."""
        pending = self._inflight.get(key)
        if pending is not None:
            await pending.wait()
            if key in self._errors:
                raise self._errors[key]
            return self._cache[key]
        done = self._inflight[key] = anyio.Event()
        self._errors.pop(key, None)
        try:
            credential = await self._exchange_with_retries(key)
        except Exception as exc:
            self._errors[key] = exc
            raise
        else:
            self._cache[key] = credential
            return credential
        finally:
            del self._inflight[key]
            done.set()

    async def _exchange_with_retries(self, key: tuple[str, str, tuple[str, ...]]) -> IssuedCredential:
        _, resource, scopes = key
        delay = 0.2
        for attempt in range(RETRIES):
            user = await self._user_tokens()
            try:
                response = await self._zone().exchange(user.access_token, resource, scopes)
            except OAuthError as exc:
                if exc.permanent or attempt == RETRIES - 1 or exc.status not in (None, 429, 500, 502, 503, 504):
                    raise
                log.warning("token exchange for %s failed (%s); retrying", resource, exc.code)
                await anyio.sleep(delay)
                delay *= 2
                continue
            self.exchanges += 1
            return IssuedCredential(response.access_token, response.expires_at, self.clock() + response.expires_in)
        raise AssertionError("unreachable")

    async def user_access_token(self) -> str:
        """The signed-in user's access token, refreshed when due: zone sync authenticates with it too, so that only
        one place rotates the refresh token."""
        return (await self._user_tokens()).access_token

    async def _user_tokens(self) -> UserTokens:
        """The user's access token, refreshed (and the rotated refresh token stored) when it is about to expire."""
        if self._user is None:
            self._user = TokenStore(self.config).load()
        if self._user.expires_at - EXPIRY_MARGIN_S <= time.time():  # stored across processes: wall clock
            if not self._user.refresh_token:
                raise NotSignedInError("the Keycard session expired: run `keycardctl auth signin`")
            try:
                fresh = await self._zone().refresh(self._user.refresh_token)
            except OAuthError as exc:
                if exc.code == "invalid_grant":
                    raise NotSignedInError("the Keycard session expired: run `keycardctl auth signin`") from None
                raise
            self._user = UserTokens(
                access_token=fresh.access_token,
                refresh_token=fresh.refresh_token or self._user.refresh_token,
                expires_at=fresh.expires_at,
                email=self._user.email,
                subject=self._user.subject,
            )
            TokenStore(self.config).save(self._user)
        return self._user

    async def run(self) -> None:
        """Renew cached credentials before they reach the expiry margin; runs until cancelled."""
        while True:
            now = self.clock()
            due = [
                key for key, value in self._cache.items() if value.deadline - EXPIRY_MARGIN_S - REFRESH_LEAD_S <= now
            ]
            for key in due:
                if key not in self._inflight:
                    try:
                        await self._exchange_once(key)
                    except (OAuthError, NotSignedInError) as exc:
                        log.warning("could not renew the credential for %s: %s", key[1], exc)
                        if self._cache[key].deadline - EXPIRY_MARGIN_S <= now:
                            del self._cache[key]
            await anyio.sleep(1.0)

    def status(self) -> list[dict[str, object]]:
        """Resource, env var and expiry of each cached credential: never a token."""
        env_vars = {entry.resource: entry.env_var for entry in self.config.credentials}
        return [
            {
                "resource": resource,
                "scopes": list(scopes),
                "env_var": env_vars.get(resource),
                "expires_at": datetime.fromtimestamp(value.expires_at, UTC).isoformat(timespec="seconds"),
            }
            for (_, resource, scopes), value in sorted(self._cache.items())
        ]

"""How zone sync authenticates to Keycard's Management API, chosen in one documented order (first match wins):

1. `KEYCARD_API_API_KEY`: sent as a bearer token, as Keycard's SDKs do (keycard-ts `ClientOptions.apiKey`,
   keycard-python `KeycardAPI(api_key=...)`).
2. `KEYCARD_API_CLIENT_ID` + `KEYCARD_API_CLIENT_SECRET`: a service account. `POST /service-account-token` with
   `grant_type=client_credentials` and HTTP Basic answers `{access_token, token_type, expires_in}` (keycard-python
   `_oauth2.OAuth2ClientCredentials`, keycard-ts `KeycardAPI.oAuth2Auth`). The token is refreshed 10 s before it
   expires and, as keycard-python's `_should_retry` does, once more when the API answers 401.
3. `KEYCARD_API_TOKEN`: a bearer token (keycardd's own variable before the SDK ones were supported; still honoured).
4. The `keycardctl auth signin` token: with an organisation (`ORG`, `[org] id`) exchanged for an org-scoped token
   at `POST /organizations/{organization_id}/token` (keycard-ts `Organizations.exchangeToken`, answering
   `TokenResponse {access_token, token_type, expires_in?}`); without one, sent as it is.
5. Nothing (or not signed in): no `Authorization` header; a local zone may accept that, Keycard's API answers 401.

The SDKs post to `https://api.keycard.ai/service-account-token` whatever their base URL; keycardd uses
`<KEYCARD_API_BASE_URL>/service-account-token`, which is the same URL by default and lets a local zone serve it.
`describe()` says which one is in use for `status`, never a secret.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import httpx

from keycardd.config import ConfigError, KeycardConfig
from keycardd.credentials.errors import NotSignedInError, OAuthError
from keycardd.zone.api import describe_error
from keycardd.zone.errors import ZoneError

EARLY_REFRESH_S = 10.0
"""keycard-python `OAuth2ClientCredentials.token_is_expired`: a token counts as expired 10 s before `expires_in`."""
DEFAULT_EXPIRES_IN_S = 3600.0
"""keycard-python's default when a token response has no `expires_in`."""

UserToken = Callable[[], Awaitable[str]]
"""The signed-in user's current access token (refreshed by the credential broker); raises when not signed in."""


class ApiAuth(Protocol):
    def describe(self) -> str:
        """Which credential is in use, for `status`; never the secret."""
        ...

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        """The `Authorization` header for the next request (fetching a token first when needed)."""
        ...

    def invalidate(self) -> bool:
        """Forget a fetched token after a 401; True when a retry with a fresh one could succeed."""
        ...


@dataclass
class NoAuth:
    def describe(self) -> str:
        return "none"

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        return {}

    def invalidate(self) -> bool:
        return False


@dataclass
class BearerToken:
    token: str = field(repr=False)
    source: str

    def describe(self) -> str:
        return f"bearer token from {self.source}"

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def invalidate(self) -> bool:
        return False


@dataclass
class _FetchedToken:
    """An access token fetched from a token endpoint, kept until 10 s before it expires. `lock` makes the requests
    verified in parallel wait for one fetch rather than each fetching a token."""

    value: str | None = field(default=None, repr=False)
    expires_at: float = 0.0
    lock: anyio.Lock = field(default_factory=anyio.Lock)

    def current(self) -> str | None:
        return self.value if self.value is not None and time.time() < self.expires_at - EARLY_REFRESH_S else None

    def store(self, document: Mapping[str, object]) -> str:
        token, expires_in = document.get("access_token"), document.get("expires_in", DEFAULT_EXPIRES_IN_S)
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
            raise ZoneError("the token endpoint answered without an access_token", reason="auth")
        self.value, self.expires_at = token, time.time() + float(expires_in)
        return token

    def clear(self) -> bool:
        had = self.value is not None
        self.value, self.expires_at = None, 0.0
        return had


@dataclass
class ClientCredentials:
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    _token: _FetchedToken = field(default_factory=_FetchedToken, init=False)

    def describe(self) -> str:
        return f"service account {self.client_id} (KEYCARD_API_CLIENT_ID, client credentials)"

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        async with self._token.lock:
            return await self._headers(client)

    async def _headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        token = self._token.current()
        if token is None:
            basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            response = await client.post(
                self.token_url,
                content=b"grant_type=client_credentials",
                headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"},
            )
            token = self._token.store(token_document(response, "the service account token endpoint"))
        return {"Authorization": f"Bearer {token}"}

    def invalidate(self) -> bool:
        return self._token.clear()


@dataclass
class SignedInUser:
    user_token: UserToken
    exchange_url: str | None
    """`<api>/organizations/<org>/token`, or None to send the user's token itself."""
    org_id: str | None = None
    _token: _FetchedToken = field(default_factory=_FetchedToken, init=False)
    _signed_in: bool = field(default=True, init=False)

    def describe(self) -> str:
        if not self._signed_in:
            return "none (not signed in: run `keycardctl auth signin` or set KEYCARD_API_API_KEY)"
        if self.org_id:
            return f"keycardctl auth signin token, exchanged for an organisation {self.org_id} token"
        return "keycardctl auth signin token"

    async def headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        async with self._token.lock:
            return await self._headers(client)

    async def _headers(self, client: httpx.AsyncClient) -> dict[str, str]:
        token = self._token.current()
        if token is None:
            try:
                user = await self.user_token()
            except NotSignedInError:
                self._signed_in = False  # anonymous: a local zone may not ask, Keycard's API answers 401
                return {}
            except OAuthError as exc:
                raise ZoneError(f"the sign-in token could not be refreshed ({exc.code})", reason="auth") from None
            self._signed_in = True
            if self.exchange_url is None:
                return {"Authorization": f"Bearer {user}"}
            response = await client.post(self.exchange_url, headers={"Authorization": f"Bearer {user}"})
            token = self._token.store(token_document(response, "the organisation token exchange"))
        return {"Authorization": f"Bearer {token}"}

    def invalidate(self) -> bool:
        return self._token.clear()


def token_document(response: httpx.Response, what: str) -> dict[str, object]:
    """A token endpoint's JSON answer, or a ZoneError naming the status and Keycard's error body."""
    if response.status_code != 200:
        raise ZoneError(f"{what} refused: {describe_error(response)}", reason="auth")
    return json_object(response, what, reason="auth")


def json_object(response: httpx.Response, what: str, *, reason: str) -> dict[str, Any]:
    """A 200 answer's body as a JSON object, or a ZoneError (with `reason`) saying what else it was."""
    try:
        document = response.json()
    except ValueError:
        raise ZoneError(f"{what} did not answer JSON", reason=reason) from None
    if not isinstance(document, dict):
        raise ZoneError(f"{what} did not answer a JSON object", reason=reason)
    return document


def auth_from_environment(env: Mapping[str, str], config: KeycardConfig, user_token: UserToken | None) -> ApiAuth:
    """The first configured credential in the documented order; a half-configured service account is an error."""
    if env.get("KEYCARD_API_API_KEY"):
        return BearerToken(env["KEYCARD_API_API_KEY"], "KEYCARD_API_API_KEY")
    client_id, secret = env.get("KEYCARD_API_CLIENT_ID"), env.get("KEYCARD_API_CLIENT_SECRET")
    if client_id and secret:
        return ClientCredentials(f"{config.api_base_url}/service-account-token", client_id, secret)
    if client_id or secret:
        given, missing = (
            ("KEYCARD_API_CLIENT_ID", "KEYCARD_API_CLIENT_SECRET")
            if client_id
            else ("KEYCARD_API_CLIENT_SECRET", "KEYCARD_API_CLIENT_ID")
        )
        raise ConfigError(f"{given} is set but {missing} is not: a service account needs both")
    if env.get("KEYCARD_API_TOKEN"):
        return BearerToken(env["KEYCARD_API_TOKEN"], "KEYCARD_API_TOKEN")
    if user_token is not None:
        org = config.org_id
        exchange = f"{config.api_base_url}/organizations/{org}/token" if org else None
        return SignedInUser(user_token, exchange, org)
    return NoAuth()

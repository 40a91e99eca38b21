"""Talking OAuth to a Keycard zone: metadata discovery, the code grant with PKCE, refresh, RFC 8693 exchange."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from keycardd.config import KeycardConfig, require_secure_url
from keycardd.credentials.errors import OAuthError

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
CLIENT_ID = "keycardd"
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    expires_at: float
    """Wall-clock expiry (for storing and showing)."""
    expires_in: float = 3600.0
    """Lifetime in seconds as granted (for deadlines on a clock that cannot jump)."""
    refresh_token: str | None = None
    id_token: str | None = None
    scope: str | None = None

    def __repr__(self) -> str:
        return f"TokenResponse(expires_at={self.expires_at}, scope={self.scope!r})"


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class ZoneOAuth:
    def __init__(self, config: KeycardConfig, client: httpx.AsyncClient) -> None:
        if not config.issuer_url:
            raise OAuthError("no_zone", "no Keycard zone is configured: set [zone] id in keycard.toml or ZONE")
        self.issuer = config.issuer_url
        self.client = client
        self._metadata: dict[str, Any] | None = None

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = f"{self.issuer}/.well-known/oauth-authorization-server"
            try:
                response = await self.client.get(url, timeout=TIMEOUT_S)
            except httpx.HTTPError as exc:
                raise OAuthError("unreachable", f"the zone did not answer ({type(exc).__name__})") from None
            document = response.json() if response.status_code == 200 else {}
            if str(document.get("issuer", "")).rstrip("/") != self.issuer.rstrip("/"):
                raise OAuthError("invalid_issuer", f"{url} does not describe issuer {self.issuer}")
            for key in ("token_endpoint", "authorization_endpoint"):
                require_secure_url(str(document.get(key, "")), f"the zone's {key}")
            self._metadata = document
        return self._metadata

    async def _token_request(self, form: dict[str, str]) -> TokenResponse:
        endpoint = str((await self.metadata())["token_endpoint"])
        try:
            response = await self.client.post(
                endpoint, data=form, headers={"Accept": "application/json"}, timeout=TIMEOUT_S
            )
        except httpx.HTTPError as exc:
            raise OAuthError("unreachable", f"the token endpoint did not answer ({type(exc).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            code = body.get("error") if isinstance(body, dict) and body.get("error") else f"http_{response.status_code}"
            raise OAuthError(str(code), str(body.get("error_description") or ""), status=response.status_code)
        lifetime = float(body.get("expires_in") or 3600)
        return TokenResponse(
            access_token=body["access_token"],
            expires_at=time.time() + lifetime,
            expires_in=lifetime,
            refresh_token=body.get("refresh_token"),
            id_token=body.get("id_token"),
            scope=body.get("scope"),
        )

    async def authorization_url(self, redirect_uri: str, challenge: str, state: str) -> str:
        endpoint = str((await self.metadata())["authorization_endpoint"])
        query = httpx.QueryParams(
            {
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": redirect_uri,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": state,
                "scope": "openid email offline_access",
            }
        )
        return f"{endpoint}?{query}"

    async def redeem_code(self, code: str, verifier: str, redirect_uri: str) -> TokenResponse:
        return await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
                "client_id": CLIENT_ID,
            }
        )

    async def refresh(self, refresh_token: str) -> TokenResponse:
        return await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID}
        )

    async def exchange(self, subject_token: str, resource: str, scopes: tuple[str, ...] = ()) -> TokenResponse:
        """RFC 8693 exchange for one resource (RFC 8707), exactly as Keycard's SDKs send it."""
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "resource": resource,
            "client_id": CLIENT_ID,
        }
        if scopes:
            form["scope"] = " ".join(scopes)
        return await self._token_request(form)

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        endpoint = (await self.metadata()).get("userinfo_endpoint")
        if not endpoint:
            return {}
        response = await self.client.get(str(endpoint), headers={"Authorization": f"Bearer {access_token}"})
        return response.json() if response.status_code == 200 else {}

    async def revoke(self, token: str) -> bool:
        endpoint = (await self.metadata()).get("revocation_endpoint")
        if not endpoint:
            return False
        response = await self.client.post(str(endpoint), data={"token": token, "client_id": CLIENT_ID})
        return response.status_code == 200

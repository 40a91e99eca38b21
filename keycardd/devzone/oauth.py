"""The OAuth side of the dev zone: sign-in (authorization code + PKCE), refresh, RFC 8693 token exchange with
RFC 8707 resources, revocation and userinfo, issuing RS256 JWTs signed with the zone's keys.

The authorize endpoint approves the configured test user at once (there is no login page). Per-resource fault
switches let tests produce every error class; counters let them see cache hits (no exchange) and single-flight.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
from joserfc import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from keycardd.devzone.keys import ZoneKeys

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a URN
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
FAULTS = (
    "access_denied",
    "insufficient_authorization",
    "invalid_client",
    "rate_limited",
    "server_error",
    "slow",
    "garbage",
)


@dataclass
class OAuthZone:
    issuer: str
    keys: ZoneKeys
    user_email: str = "dev@example.com"
    user_sub: str = "usr_dev"
    access_ttl_s: int = 3600
    exchange_ttl_s: int = 3600
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    """refresh token -> subject; rotated on every use."""
    access_tokens: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)
    faults: dict[str, str] = field(default_factory=dict)
    """resource -> fault name (see FAULTS)."""
    exchanges: list[str] = field(default_factory=list)
    """The resource of every successful token exchange, in order."""
    attempts: list[str] = field(default_factory=list)
    """The resource of every token-exchange request, successful or not (retries show here)."""

    def mint(self, audience: str, ttl_s: int, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "sub": self.user_sub,
            "email": self.user_email,
            "aud": audience,
            "iat": now,
            "exp": now + ttl_s,
            "jti": secrets.token_hex(8),
            **claims,
        }
        token = jwt.encode({"alg": "RS256", "kid": str(self.keys.active.kid)}, payload, self.keys.active)
        return str(token)

    def _tokens(self) -> dict[str, Any]:
        access = self.mint(self.issuer, self.access_ttl_s, scope="openid email offline_access")
        refresh = secrets.token_urlsafe(32)
        self.access_tokens.add(access)
        self.refresh_tokens[refresh] = self.user_sub
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_ttl_s,
            "refresh_token": refresh,
            "id_token": self.mint("keycard-cli", self.access_ttl_s),
            "scope": "openid email offline_access",
        }


def _error(code: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": description}, status_code=status)


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (urllib's parser; no multipart needed here)."""
    return {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}


def routes(zone: OAuthZone) -> list[BaseRoute]:
    async def authorize(request: Request) -> Response:
        query = request.query_params
        redirect_uri = query.get("redirect_uri", "")
        if urlsplit(redirect_uri).hostname not in ("127.0.0.1", "localhost", "::1"):
            return _error("invalid_request", "redirect_uri must be a loopback address")
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            return _error("invalid_request", "response_type=code and code_challenge_method=S256 are required")
        code = secrets.token_urlsafe(16)
        zone.codes[code] = {"challenge": query.get("code_challenge", ""), "redirect_uri": redirect_uri}
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': query.get('state', '')})}", 302)

    async def token(request: Request) -> Response:
        form = await _form(request)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            pending = zone.codes.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier", ""))
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if pending is None or pending["challenge"] != digest or pending["redirect_uri"] != form.get("redirect_uri"):
                return _error("invalid_grant", "the code, verifier or redirect_uri does not match")
            return JSONResponse(zone._tokens())
        if grant == "refresh_token":
            if zone.refresh_tokens.pop(str(form.get("refresh_token")), None) is None:
                return _error("invalid_grant", "unknown or already used refresh token")
            return JSONResponse(zone._tokens())
        if grant == TOKEN_EXCHANGE:
            return await _exchange(form)
        return _error("unsupported_grant_type", f"grant_type {grant!r} is not supported")

    async def _exchange(form: dict[str, str]) -> Response:
        subject, resource = str(form.get("subject_token", "")), str(form.get("resource", ""))
        if subject not in zone.access_tokens or subject in zone.revoked:
            return _error("invalid_grant", "the subject token is not valid")
        if form.get("subject_token_type") != ACCESS_TOKEN_TYPE or not resource:
            return _error("invalid_request", "subject_token_type and resource are required")
        zone.attempts.append(resource)
        fault = zone.faults.get(resource)
        if fault == "slow":
            await anyio.sleep(2)
        elif fault == "rate_limited":
            return _error("slow_down", "too many requests", 429)
        elif fault == "server_error":
            return _error("server_error", "the zone failed", 500)
        elif fault == "garbage":
            return Response(b"<html>oops</html>", media_type="text/html")
        elif fault == "invalid_client":
            return _error("invalid_client", "client authentication failed", 401)
        elif fault is not None:
            return _error(fault, f"{fault} for {resource}", 403 if fault == "access_denied" else 400)
        zone.exchanges.append(resource)
        scope = str(form.get("scope", ""))
        return JSONResponse(
            {
                "access_token": zone.mint(resource, zone.exchange_ttl_s, scope=scope),
                "token_type": "Bearer",
                "expires_in": zone.exchange_ttl_s,
                "issued_token_type": ACCESS_TOKEN_TYPE,
                "scope": scope,
            }
        )

    async def revoke(request: Request) -> Response:
        form = await _form(request)
        value = str(form.get("token", ""))
        zone.refresh_tokens.pop(value, None)
        zone.revoked.add(value)
        return Response(status_code=200)

    async def userinfo(request: Request) -> Response:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in zone.access_tokens or bearer in zone.revoked:
            return _error("invalid_token", "unknown access token", 401)
        return JSONResponse({"sub": zone.user_sub, "email": zone.user_email})

    return [
        Route("/oauth/authorize", authorize),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/revoke", revoke, methods=["POST"]),
        Route("/oauth/userinfo", userinfo),
    ]

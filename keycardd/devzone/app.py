"""The dev zone's HTTP surface (Starlette): RFC 8414 metadata, the JWKS, the Management API (`api`), OAuth
(`oauth`), and an admin surface for tests."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from keycardd.devzone.api import api_routes, error
from keycardd.devzone.oauth import TOKEN_EXCHANGE
from keycardd.devzone.oauth import routes as oauth_routes
from keycardd.devzone.state import ZoneState


def create_app(state: ZoneState) -> Starlette:
    zone = state.policy_zone

    async def metadata(request: Request) -> Response:
        issuer = state.issuer
        return JSONResponse({
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "token_endpoint": f"{issuer}/oauth/token",
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "userinfo_endpoint": f"{issuer}/oauth/userinfo",
            "grant_types_supported": ["authorization_code", "refresh_token", TOKEN_EXCHANGE],
            "code_challenge_methods_supported": ["S256"],
        })  # fmt: skip

    async def jwks(request: Request) -> Response:
        return JSONResponse(state.keys.jwks())

    accounts = state.accounts

    async def admin(request: Request) -> Response:
        """The admin surface: publish, activate, shadow, tamper, and set the user bundle (loopback only)."""
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "invalid_request", "error_description": "send a JSON object"}, 400)
        action = request.path_params["action"]
        versions = {version.id: version for policy_set in zone.sets.values() for version in policy_set.versions}
        if action == "publish":
            version = zone.publish(body["set"], body["policies"], activate=body.get("activate", True))
            return JSONResponse({"version_id": version.id, "version": version.number})
        if action in ("activate", "shadow") and body.get("version_id") not in versions and body.get("version_id"):
            return error(404, "not_found", "no such version")
        if action == "activate":
            zone.activate(versions[body["version_id"]])
        elif action == "shadow":
            zone.set_shadow(versions.get(body.get("version_id") or ""), body.get("set"))
        elif action == "tamper":
            zone.tampering = body.get("kind")
        elif action == "bundle":
            zone.bundle = body.get("policies")
        elif action == "rotate-key":
            state.keys.rotate()
        elif action == "revoke-api-tokens":
            accounts.revoke_tokens()
        else:
            return error(404, "not_found", f"no admin action {action!r}")
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server", metadata),
            Route("/.well-known/jwks.json", jwks),
            *api_routes(state),
            Route("/admin/{action}", admin, methods=["POST"]),
            *oauth_routes(state.oauth),
        ]
    )

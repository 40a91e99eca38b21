"""The dev zone's HTTP surface (Starlette): RFC 8414 metadata, the JWKS, and the policy-set API."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from keycardd.devzone.oauth import TOKEN_EXCHANGE
from keycardd.devzone.oauth import routes as oauth_routes
from keycardd.devzone.state import ZoneState
from keycardd.zone.bundle import MEDIA_TYPE


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

    def _zone_matches(request: Request) -> bool:
        return bool(request.path_params["zone_id"] == state.zone_id)

    async def policy_sets(request: Request) -> Response:
        if not _zone_matches(request):
            return JSONResponse({"error": "not_found"}, status_code=404)
        etag = zone.etag()
        if request.headers.get("if-none-match") == etag:
            zone.not_modified += 1
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse(zone.list_sets(), headers={"ETag": etag})

    async def version(request: Request) -> Response:
        document = zone.version_document(request.path_params["set_id"], request.path_params["version_id"])
        if document is None or not _zone_matches(request):
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(document)

    async def version_policies(request: Request) -> Response:
        document = zone.version_policies(request.path_params["set_id"], request.path_params["version_id"])
        if document is None or not _zone_matches(request):
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(document)

    async def policy_bundle(request: Request) -> Response:
        if zone.bundle is None:
            return JSONResponse({"error": "not_found", "error_description": "no user policy bundle"}, status_code=404)
        archive, digest = zone.bundle_archive()
        etag = f'"{digest}"'
        if request.headers.get("if-none-match") == etag:
            zone.not_modified += 1
            return Response(status_code=304, headers={"ETag": etag})
        return Response(archive, media_type=MEDIA_TYPE, headers={"ETag": etag})

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
            return JSONResponse({"error": "not_found"}, status_code=404)
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
        else:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse({"ok": True})

    base = "/zones/{zone_id}/policy-sets"
    return Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server", metadata),
            Route("/.well-known/jwks.json", jwks),
            Route(base, policy_sets),
            Route(base + "/{set_id}/versions/{version_id}", version),
            Route(base + "/{set_id}/versions/{version_id}/policies", version_policies),
            Route("/policy/bundle", policy_bundle),
            Route("/admin/{action}", admin, methods=["POST"]),
            *oauth_routes(state.oauth),
        ]
    )

"""The dev zone's Management API routes: policy sets, their versions and policies (every list paginated, every
page with its own ETag), the user bundle, and the two token endpoints, answering errors with the API's `Error` body.
Shapes are in `policy` and `pages`, credentials in `accounts`."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from keycardd.devzone.accounts import error_body
from keycardd.devzone.pages import BadPageRequest
from keycardd.devzone.state import ZoneState
from keycardd.zone.bundle import MEDIA_TYPE


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(error_body(status, code, message), status_code=status)


def _is_user(state: ZoneState, authorization: str | None) -> bool:
    """A signed-in user's token, or the organisation token exchanged for one: not an API key or service account."""
    bearer = (authorization or "").removeprefix("Bearer ")
    return state.accounts.kind_of(authorization) == "organization" or bearer in state.oauth.access_tokens


def api_routes(state: ZoneState) -> list[BaseRoute]:
    zone = state.policy_zone
    accounts = state.accounts

    def refusal(request: Request) -> Response | None:
        """401 for a caller without a valid credential, 404 for another zone's path (the API's `Error` body)."""
        if not accounts.allows(request.headers.get("authorization")):
            return error(401, "unauthorized", "a valid bearer token is required")
        if request.path_params.get("zone_id", state.zone_id) != state.zone_id:
            return error(404, "not_found", "no such zone")
        return None

    def listed(request: Request, document: dict[str, Any] | None) -> Response:
        """A page of a list with its own ETag; 304 when the caller already has that page."""
        if document is None:
            return error(404, "not_found", "no such policy set or version")
        if not zone.send_etags:
            return JSONResponse(document)
        etag = zone.page_etag(document)
        if request.headers.get("if-none-match") == etag:
            zone.not_modified += 1
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse(document, headers={"ETag": etag})

    def query(request: Request) -> dict[str, str]:
        return dict(request.query_params)

    async def policy_sets(request: Request) -> Response:
        if (refused := refusal(request)) is not None:
            return refused
        try:
            return listed(request, zone.list_sets(query(request)))
        except BadPageRequest as exc:
            return error(400, "invalid_request", str(exc))

    async def set_versions(request: Request) -> Response:
        if (refused := refusal(request)) is not None:
            return refused
        try:
            return listed(request, zone.list_versions(request.path_params["set_id"], query(request)))
        except BadPageRequest as exc:
            return error(400, "invalid_request", str(exc))

    async def version(request: Request) -> Response:
        if (refused := refusal(request)) is not None:
            return refused
        document = zone.version_document(request.path_params["set_id"], request.path_params["version_id"])
        if document is None:
            return error(404, "not_found", "no such policy set version")
        return JSONResponse(document)

    async def version_policies(request: Request) -> Response:
        if (refused := refusal(request)) is not None:
            return refused
        params = request.path_params
        try:
            return listed(request, zone.version_policies(params["set_id"], params["version_id"], query(request)))
        except BadPageRequest as exc:
            return error(400, "invalid_request", str(exc))

    async def policy_bundle(request: Request) -> Response:
        if (refused := refusal(request)) is not None:
            return refused
        if accounts.required and not _is_user(state, request.headers.get("authorization")):
            return error(403, "forbidden", "the policy bundle belongs to a user: call it with a user's token")
        if zone.bundle is None:
            return error(404, "not_found", "no user policy bundle")
        archive, digest = zone.bundle_archive()
        etag = f'"{digest}"'
        if request.headers.get("if-none-match") == etag:
            zone.not_modified += 1
            return Response(status_code=304, headers={"ETag": etag})
        return Response(archive, media_type=MEDIA_TYPE, headers={"ETag": etag})

    async def service_account_token(request: Request) -> Response:
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        token = accounts.client_credentials(request.headers.get("authorization"), form)
        if token is None:
            return error(401, "invalid_client", "unknown service account or wrong secret")
        return JSONResponse(token)

    async def organization_token(request: Request) -> Response:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in state.oauth.access_tokens or bearer in state.oauth.revoked:
            return error(401, "unauthorized", "sign in first: the user token is not valid")
        if request.path_params["org_id"] != accounts.org_id:
            return error(403, "forbidden", "the user is not a member of this organization")
        return JSONResponse(accounts.organization_token())

    base = "/zones/{zone_id}/policy-sets"
    return [
        Route(base, policy_sets),
        Route(base + "/{set_id}/versions", set_versions),
        Route(base + "/{set_id}/versions/{version_id}", version),
        Route(base + "/{set_id}/versions/{version_id}/policies", version_policies),
        Route("/policy/bundle", policy_bundle),
        Route("/service-account-token", service_account_token, methods=["POST"]),
        Route("/organizations/{org_id}/token", organization_token, methods=["POST"]),
    ]

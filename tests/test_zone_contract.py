"""Contract tests: the dev zone's JSON is pinned to Keycard's published SDK types, independently of keycardd's client.

The expected field names and nesting below are copied from the SDK sources, not from keycardd:
- keycard-ts (Stainless-generated from Keycard's OpenAPI spec) at 8c6fd99 (2026-05-18):
  src/resources/zones/policy-sets/policy-sets.ts (`PolicySet`, `PolicySetWithBinding`, `PolicySetListResponse`,
  `PolicySetManifest(Entry)`, `Attestation`, `AttestationStatement`), .../policy-sets/versions.ts
  (`PolicySetVersion`, `VersionListPoliciesResponse`, `VersionListPoliciesParams.format`),
  src/resources/zones/policies/versions.ts (`PolicyVersion`), src/resources/organizations/organizations.ts
  (`TokenResponse`);
- keycard-python at d9a374f (2026-06-09): src/keycardai_api/_oauth2.py (`/service-account-token`, Basic auth,
  `grant_type=client_credentials`);
- terraform-provider-keycard at 0c4a2ad: api/openapi.yaml, `components.schemas.Error` (`message`, `code`, `status`).
Every request here is plain httpx against the running dev zone; nothing of `keycardd.zone` is used.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keycardd.devzone.server import DevZone

# ---- the SDK types: (required fields, optional fields) -------------------------------------------------------------

POLICY_SET = (
    {"id", "created_at", "created_by", "name", "owner_type", "scope_type", "updated_at", "zone_id"},
    {"archived_at", "latest_version", "latest_version_id", "updated_by"},
)
POLICY_SET_WITH_BINDING = (
    POLICY_SET[0],
    POLICY_SET[1]
    | {
        "active",
        "active_version",
        "active_version_id",
        "mode",
        "scope_target_id",
        "shadow_version",
        "shadow_version_id",
    },
)
PAGINATION = ({"after_cursor", "before_cursor"}, {"total_count"})
POLICY_SET_VERSION = (
    {"id", "created_at", "created_by", "manifest", "manifest_sha", "owner_type", "policy_set_id", "schema_version",
     "version"},
    {"active", "archived_at", "archived_by", "attestation"},
)  # fmt: skip
MANIFEST_ENTRY = ({"policy_id", "policy_version_id"}, {"sha"})
ATTESTATION = ({"payload", "protected", "signature"}, set[str]())
ATTESTATION_STATEMENT = (
    {"attested_at", "attested_by", "key_id", "manifest_sha", "policy_set_id", "policy_set_version", "status", "type",
     "v", "zone_id"},
    set[str](),
)  # fmt: skip
POLICY_VERSION = (
    {"id", "created_at", "created_by", "owner_type", "policy_id", "schema_version", "sha", "version", "zone_id"},
    {"archived_at", "archived_by", "cedar_json", "cedar_raw"},
)
TOKEN_RESPONSE = ({"access_token", "token_type"}, {"expires_in"})
ERROR = ({"message", "code", "status"}, set[str]())

POLICIES = {f"p{index}": f'forbid (principal, action, resource == Tool::"t{index}");' for index in range(5)}


def assert_shape(document: Any, shape: tuple[set[str], set[str]]) -> None:
    required, optional = shape
    assert isinstance(document, dict)
    assert required <= set(document), f"missing {sorted(required - set(document))}"
    assert set(document) <= required | optional, f"not in the SDK type: {sorted(set(document) - required - optional)}"


def b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture
def zone() -> Iterator[DevZone]:
    with DevZone(zone_id="zc", require_auth=True) as running:
        running.state.policy_zone.publish("org", POLICIES)
        running.state.policy_zone.publish("team", {"p0": POLICIES["p0"]})
        running.state.policy_zone.publish("more", {"p1": POLICIES["p1"]})
        yield running


@pytest.fixture
def api(zone: DevZone) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {zone.state.accounts.api_key}"}
    with httpx.Client(base_url=zone.issuer, headers=headers, timeout=10) as client:
        yield client


def every_page(api: httpx.Client, path: str, **params: str) -> tuple[list[Any], int]:
    """Follow `pagination.after_cursor` as an SDK user would; returns the items and the number of pages."""
    items: list[Any] = []
    pages = 0
    after = None
    while True:
        response = api.get(path, params={**params, **({"after": after} if after else {})})
        assert response.status_code == 200, response.text
        document = response.json()
        assert set(document) == {"items", "pagination"}
        assert_shape(document["pagination"], PAGINATION)
        items += document["items"]
        pages += 1
        after = document["pagination"]["after_cursor"]
        if after is None:
            return items, pages


def test_policy_set_listing_is_a_paginated_policy_set_with_binding(api: httpx.Client) -> None:
    items, pages = every_page(api, "/zones/zc/policy-sets")
    assert pages == 2  # three sets, two per page by default
    assert len({item["id"] for item in items}) == 3
    for item in items:
        assert_shape(item, POLICY_SET_WITH_BINDING)
        assert item["mode"] in ("active", "shadow", None) and item["owner_type"] in ("platform", "customer")
        assert item["scope_type"] in ("zone", "resource", "user", "session")
    first = api.get("/zones/zc/policy-sets").json()
    assert first["pagination"]["before_cursor"] is None
    second = api.get("/zones/zc/policy-sets", params={"after": first["pagination"]["after_cursor"]}).json()
    assert second["pagination"]["before_cursor"] is not None  # backward pagination from the second page
    back = api.get("/zones/zc/policy-sets", params={"before": second["pagination"]["before_cursor"]}).json()
    assert [item["id"] for item in back["items"]] == [item["id"] for item in first["items"]]


def test_policy_set_version_and_its_attestation(api: httpx.Client) -> None:
    org = next(item for item in every_page(api, "/zones/zc/policy-sets")[0] if item["name"] == "org")
    version = api.get(f"/zones/zc/policy-sets/{org['id']}/versions/{org['active_version_id']}").json()
    assert_shape(version, POLICY_SET_VERSION)
    assert set(version["manifest"]) == {"entries"}
    for entry in version["manifest"]["entries"]:
        assert_shape(entry, MANIFEST_ENTRY)
    assert_shape(version["attestation"], ATTESTATION)
    header = b64json(version["attestation"]["protected"])
    assert header["alg"] == "RS256" and isinstance(header["kid"], str)
    statement = b64json(version["attestation"]["payload"])
    assert_shape(statement, ATTESTATION_STATEMENT)
    assert statement["type"] == "policy_set_attestation" and statement["v"] == 1
    assert statement["status"] in ("created", "re_signed") and statement["key_id"] == header["kid"]
    assert statement["manifest_sha"] == version["manifest_sha"]
    versions, _ = every_page(api, f"/zones/zc/policy-sets/{org['id']}/versions")
    for listed in versions:
        assert_shape(listed, POLICY_SET_VERSION)


@pytest.mark.parametrize(
    ("format_", "raw", "as_json"), [("cedar", True, False), ("json", False, True), (None, True, True)]
)
def test_version_policies_are_paginated_policy_versions(
    api: httpx.Client, format_: str | None, raw: bool, as_json: bool
) -> None:
    org = next(item for item in every_page(api, "/zones/zc/policy-sets")[0] if item["name"] == "org")
    path = f"/zones/zc/policy-sets/{org['id']}/versions/{org['active_version_id']}/policies"
    items, pages = every_page(api, path, **({"format": format_} if format_ else {}))
    assert pages == 3 and len(items) == 5
    for item in items:
        assert_shape(item, POLICY_VERSION)
        assert "cedar" not in item  # the field keycardd's client once read; Keycard has no such field
        assert isinstance(item["cedar_raw"], str) is raw and (item["cedar_raw"] is None) is not raw
        assert (item["cedar_json"] is not None) is as_json
    if raw:
        assert {item["policy_id"]: item["cedar_raw"] for item in items} == POLICIES
    if as_json:
        assert items[0]["cedar_json"]["effect"] == "forbid"


def test_limit_is_honoured_up_to_the_page_size(api: httpx.Client) -> None:
    org = next(item for item in every_page(api, "/zones/zc/policy-sets")[0] if item["name"] == "org")
    path = f"/zones/zc/policy-sets/{org['id']}/versions/{org['active_version_id']}/policies"
    assert len(api.get(path, params={"limit": "1"}).json()["items"]) == 1
    assert len(api.get(path, params={"limit": "100"}).json()["items"]) == 2  # more than the zone serves at once
    _, pages = every_page(api, path, limit="1")
    assert pages == 5


@pytest.mark.parametrize("params", [{"after": "not-a-cursor"}, {"limit": "0"}, {"after": "x", "before": "y"}])
def test_bad_list_queries_answer_the_api_error_body(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get("/zones/zc/policy-sets", params=params)
    assert response.status_code == 400
    assert_shape(response.json(), ERROR)
    assert response.json()["status"] == 400


def test_missing_credentials_answer_401_with_the_api_error_body(zone: DevZone) -> None:
    response = httpx.get(f"{zone.issuer}/zones/zc/policy-sets", timeout=10)
    assert response.status_code == 401
    assert_shape(response.json(), ERROR)


def test_service_account_token_as_the_sdk_requests_it(zone: DevZone) -> None:
    accounts = zone.state.accounts
    basic = base64.b64encode(f"{accounts.client_id}:{accounts.client_secret}".encode()).decode()
    response = httpx.post(
        f"{zone.issuer}/service-account-token",
        content=b"grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert response.status_code == 200
    token = response.json()
    assert_shape(token, TOKEN_RESPONSE)
    listing = httpx.get(
        f"{zone.issuer}/zones/zc/policy-sets", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert listing.status_code == 200
    wrong = httpx.post(f"{zone.issuer}/service-account-token", content=b"grant_type=client_credentials",
                       headers={"Authorization": "Basic " + base64.b64encode(b"sa_dev:wrong").decode()})  # fmt: skip
    assert wrong.status_code == 401


def test_organisation_token_exchange_answers_a_token_response(zone: DevZone) -> None:
    user_token = zone.state.oauth._tokens()["access_token"]  # what `keycardctl auth signin` stores
    org = zone.state.accounts.org_id
    response = httpx.post(
        f"{zone.issuer}/organizations/{org}/token", headers={"Authorization": f"Bearer {user_token}"}, timeout=10
    )
    assert response.status_code == 200
    assert_shape(response.json(), TOKEN_RESPONSE)
    refused = httpx.post(f"{zone.issuer}/organizations/{org}/token", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
    assert_shape(refused.json(), ERROR)

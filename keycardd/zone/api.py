"""Keycard's Management API as zone sync reads it: authenticated GETs, every list followed to its end, and errors
that name the HTTP status and Keycard's error body.

Shapes, from Keycard's published SDK types:
- a list answers `{items: [...], pagination: {after_cursor, before_cursor, total_count?}}` and takes the query
  `after` (a cursor from `after_cursor`) and `limit` (keycard-ts `PolicySetListResponse`,
  `VersionListPoliciesResponse` and their `*ListParams`, src/resources/zones/policy-sets/*.ts). `after_cursor` is
  null on the last page; a server may return fewer items than `limit`, so only the cursor ends a list.
- an error answers `{message, code, status}` (the `Error` schema of terraform-provider-keycard api/openapi.yaml);
  keycard-ts `APIError` shows `message` when there is one and the JSON body otherwise, and so does `describe_error`.

A list is bounded (`MAX_PAGES`) and a cursor the server repeats is refused, so a broken or hostile server cannot
keep a sync running forever.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from keycardd.zone.errors import ZoneError

if TYPE_CHECKING:
    from keycardd.zone.auth import ApiAuth

PAGE_LIMIT = 100
"""The `limit` asked for: the API's default (1-1000 allowed in terraform-provider-keycard's openapi.yaml); the
server may answer fewer."""
MAX_PAGES = 1000
"""At most this many pages per list (100,000 items at the asked limit) before the sync is refused."""
MAX_ERROR_TEXT = 300


@dataclass(frozen=True)
class Page:
    """One page of a listing as last seen: the cursor it was asked with, its ETag, and the cursor after it."""

    after: str | None
    etag: str | None
    next_cursor: str | None


@dataclass
class ManagementApi:
    client: httpx.AsyncClient
    base_url: str
    auth: ApiAuth
    requests: int = 0
    """How many API requests this client sent (the sync benchmark reports it)."""

    async def get(
        self, path: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """GET with authentication; after a 401 a fetched token is replaced once, as keycard-python retries."""
        for attempt in (1, 2):
            auth_headers = await self.auth.headers(self.client)
            self.requests += 1
            response = await self.client.get(
                self.base_url + path, params=params, headers={**(headers or {}), **auth_headers}
            )
            if response.status_code != 401 or attempt == 2 or not self.auth.invalidate():
                return response
        raise AssertionError("unreachable")

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return json_object(await self.get(path, params), path)

    async def list_all(self, path: str, params: Mapping[str, str] | None = None) -> list[Any]:
        """Every item of a cursor-paginated list, following `after_cursor` to the end."""
        items, _ = await self._pages(path, params or {}, ())
        assert items is not None
        return items

    async def list_if_changed(
        self, path: str, params: Mapping[str, str], known: Sequence[Page]
    ) -> tuple[list[Any] | None, list[Page]]:
        """Every item of a list, or None when each page the last listing had answers 304 to its own ETag.

        The ETag of one page need not cover the others, so every page is asked with its own `If-None-Match`;
        as soon as one has changed, the whole list is read again from the first page."""
        if known:
            unchanged, _ = await self._pages(path, params, known)
            if unchanged is None:
                return None, list(known)
        return await self._pages(path, params, ())

    async def _pages(
        self, path: str, params: Mapping[str, str], known: Sequence[Page]
    ) -> tuple[list[Any] | None, list[Page]]:
        """With `known`, None as soon as all known pages answered 304, and [] (meaning: changed) at the first 200;
        without, all items."""
        items: list[Any] = []
        pages: list[Page] = []
        after: str | None = None
        seen: set[str] = set()
        for number in range(MAX_PAGES):
            query = {**params, "limit": str(PAGE_LIMIT), **({"after": after} if after is not None else {})}
            previous = known[number] if number < len(known) and known[number].after == after else None
            headers = {"If-None-Match": previous.etag} if previous is not None and previous.etag else {}
            response = await self.get(path, query, headers)
            if response.status_code == 304 and previous is not None:
                after = previous.next_cursor
            elif known:
                return [], pages  # changed (or the remembered chain no longer fits): the caller reads it all again
            else:
                document = json_object(response, path)
                page_items, after = _page(document, path)
                items += page_items
                pages.append(Page(query.get("after"), response.headers.get("ETag"), after))
            if after is None:
                return (None if known else items), pages
            if after in seen:
                raise ZoneError(f"{path} repeated the cursor {after!r}, so its list never ends", reason="pagination")
            seen.add(after)
        raise ZoneError(
            f"{path} still had more after {MAX_PAGES} pages; refusing a list that long", reason="pagination"
        )


def _page(document: Mapping[str, Any], path: str) -> tuple[list[Any], str | None]:
    items, pagination = document.get("items"), document.get("pagination")
    if not isinstance(items, list):
        raise ZoneError(f"{path} answered a list without `items`", reason="pagination")
    if not isinstance(pagination, dict) or "after_cursor" not in pagination:
        raise ZoneError(f"{path} answered a list without `pagination.after_cursor`", reason="pagination")
    after = pagination["after_cursor"]
    if after is not None and not isinstance(after, str):
        raise ZoneError(f"{path} answered an unusable after_cursor {after!r}", reason="pagination")
    return items, after or None  # an empty cursor leads nowhere: read as the end of the list


def json_object(response: httpx.Response, path: str) -> dict[str, Any]:
    if response.status_code != 200:
        reason = "auth" if response.status_code in (401, 403) else "http"
        raise ZoneError(f"GET {path}: {describe_error(response)}", reason=reason)
    try:
        document = response.json()
    except ValueError:
        raise ZoneError(f"GET {path} did not answer JSON", reason="http") from None
    if not isinstance(document, dict):
        raise ZoneError(f"GET {path} did not answer a JSON object", reason="http")
    return document


def describe_error(response: httpx.Response) -> str:
    """`HTTP <status>` and what Keycard's error body says: `{message, code}`, OAuth's `{error, error_description}`,
    or the body itself, shortened. Whatever credential the request carried is cut out first, in case a server
    echoes it back."""
    text = f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        body = response.text.strip()
    if isinstance(body, dict):
        message = body.get("message") or body.get("error_description")
        code = body.get("code") or body.get("error")
        detail = ": ".join(str(part) for part in (code, message) if part) or json.dumps(body)
    else:
        detail = str(body)
    for secret in _credentials_sent(response):
        detail = detail.replace(secret, "[redacted]")
    detail = " ".join(detail.split())[:MAX_ERROR_TEXT]
    return f"{text} ({detail})" if detail else text


def _credentials_sent(response: httpx.Response) -> list[str]:
    """The bearer token, or the Basic blob and the secret inside it, that the request carried."""
    try:
        header = response.request.headers.get("Authorization", "")
    except RuntimeError:  # a response built without a request
        return []
    scheme, _, value = header.partition(" ")
    sent = [value]
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except ValueError:
            decoded = ""
        sent += [decoded, decoded.partition(":")[2]]
    return sorted((part for part in sent if len(part) >= 4), key=len, reverse=True)

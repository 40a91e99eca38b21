"""Cursor pagination as Keycard's Management API does it, for every list the dev zone serves.

From keycard-ts `PolicySetListResponse` / `VersionListPoliciesResponse` and their `*ListParams`
(src/resources/zones/policy-sets/*.ts): the answer is `{items, pagination: {after_cursor, before_cursor}}` (plus
`total_count` only with `expand[]=total_count`); the query takes `after` or `before` (mutually exclusive, opaque
cursors from the previous answer) and `limit`. Here `page_size` is both the default and the largest page served, so
a client that asks for more still has to follow `after_cursor`: the point of a small default (2) is that keycardd's
own suite pages through every list.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_PAGE_SIZE = 2


class BadPageRequest(ValueError):
    """The query cannot be answered (bad cursor or limit); the message is the `Error.message` of the 400."""


def cursor(position: int) -> str:
    """An opaque cursor: the position of the next item, base64url (clients must not read it, and cannot rely on it)."""
    return base64.urlsafe_b64encode(f"kc1:{position}".encode()).decode().rstrip("=")


def position_of(value: str) -> int:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        prefix, number = text.split(":")
        position = int(number)
    except ValueError:
        raise BadPageRequest(f"the cursor {value!r} is not one this zone issued") from None
    if prefix != "kc1" or position < 0:
        raise BadPageRequest(f"the cursor {value!r} is not one this zone issued")
    return position


def page(items: Sequence[Any], query: Mapping[str, str], page_size: int) -> tuple[list[Any], int, int]:
    """The slice of `items` the query asks for, with its start and end positions."""
    after, before, limit_text = query.get("after"), query.get("before"), query.get("limit")
    if after is not None and before is not None:
        raise BadPageRequest("`after` and `before` are mutually exclusive")
    try:
        limit = int(limit_text) if limit_text is not None else page_size
    except ValueError:
        raise BadPageRequest(f"limit must be an integer, got {limit_text!r}") from None
    if limit < 1:
        raise BadPageRequest("limit must be at least 1")
    limit = min(limit, page_size)
    if before is not None:
        end = min(position_of(before), len(items))
        start = max(end - limit, 0)
    else:
        start = min(position_of(after), len(items)) if after is not None else 0
        end = min(start + limit, len(items))
    return list(items[start:end]), start, end


def envelope(items: list[Any], start: int, end: int, total: int, *, after: str | None = None) -> dict[str, Any]:
    """`{items, pagination}`; `after` overrides the next cursor (how the dev zone forges a broken one)."""
    next_cursor = after if after is not None else (cursor(end) if end < total else None)
    return {
        "items": items,
        "pagination": {"after_cursor": next_cursor, "before_cursor": cursor(start) if start else None},
    }

"""Cursor pagination: opaque cursors over a stable sort key, never skip/offset."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from servicekit.errors import InvalidInput

T = TypeVar("T")
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    #: Pass back as `cursor` for the next page; absent on the last page.
    next_cursor: str | None = None


class PageRequest(BaseModel):
    after: dict[str, Any] | None = None
    limit: int = 50

    def after_value(self, key: str) -> Any:
        """The cursor's value for `key`; a cursor without it was not made by this listing."""
        if self.after is None or key not in self.after:
            raise InvalidInput("the cursor is not one this API returned", field="cursor")
        return self.after[key]


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidInput("the cursor is not one this API returned", field="cursor") from None
    if not isinstance(position, dict) or any(isinstance(v, dict | list) for v in position.values()):
        # Only scalars: a cursor must never smuggle a query operator into a filter.
        raise InvalidInput("the cursor is not one this API returned", field="cursor")
    return position


async def _page_request(
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> PageRequest:
    return PageRequest(after=decode_cursor(cursor) if cursor else None, limit=limit)


PageRequestDep = Annotated[PageRequest, Depends(_page_request)]


def next_cursor(items: list[dict[str, Any]], limit: int, *keys: str) -> str | None:
    """The cursor after the last of `limit + 1` fetched documents, or None when done."""
    if len(items) <= limit:
        return None
    last = items[limit - 1]
    return encode_cursor({k: last[k] for k in keys})


def page_of(found: Sequence[T], limit: int, position: Callable[[T], dict[str, Any]]) -> Page[T]:
    """A page of the first `limit` of `limit + 1` fetched items, with the cursor after the
    last shown (`position` names its sort key) when there is more."""
    items = list(found[:limit])
    more = len(found) > limit and items
    return Page(items=items, next_cursor=encode_cursor(position(items[-1])) if more else None)

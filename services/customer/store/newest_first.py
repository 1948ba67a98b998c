"""Newest-first listings (a customer's behaviour, a customer's orders) paged by cursor.

The position is (time, id) of the last item answered: the time alone is not unique, and
skip/offset would repeat or drop items while new ones arrive."""

from __future__ import annotations

from datetime import datetime

from servicekit.errors import InvalidInput
from servicekit.mongo import Document
from servicekit.pagination import PageRequest


def sort_keys(time_key: str, id_key: str) -> list[tuple[str, int]]:
    return [(time_key, -1), (id_key, -1)]


def after(query: Document, page: PageRequest, time_key: str, id_key: str) -> Document:
    """`query`, narrowed to the items after the page's cursor (if it has one)."""
    if not page.after:
        return query
    at = _cursor_time(page.after_value(time_key))
    last_id = str(page.after_value(id_key))
    position = {"$or": [{time_key: {"$lt": at}}, {time_key: at, id_key: {"$lt": last_id}}]}
    return {"$and": [query, position]}


def _cursor_time(value: object) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput("the cursor is not one this API returned", field="cursor") from None

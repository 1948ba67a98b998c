"""Recognising a lost race at a unique index."""

from __future__ import annotations

from pymongo.errors import BulkWriteError, DuplicateKeyError

DUPLICATE_KEY = 11000


def is_duplicate_key(exc: BaseException) -> bool:
    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, BulkWriteError):
        return any(e.get("code") == DUPLICATE_KEY for e in exc.details.get("writeErrors", []))
    return False

"""Small value helpers shared by validation and both evaluators, so they agree on what a
number, an instant and an equal value are."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime


def is_number(value: object) -> bool:
    # bool is an int in Python; a rule never means True when it says 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    # An int is always finite; math.isfinite would overflow on one past the float range.
    return isinstance(value, int) or math.isfinite(value)


def is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def same(actual: object, expected: object) -> bool:
    """Equality without Python's True == 1 and 1 == 1.0-vs-"1" surprises across kinds."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if is_number(actual) and is_number(expected):
        return actual == expected
    return type(actual) is type(expected) and actual == expected


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC, as everywhere on the platform."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_instant(value: object) -> datetime | None:
    """An ISO 8601 date or date-time (a date is its midnight UTC); None if it is neither."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None

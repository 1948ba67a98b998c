"""Time, in UTC, at the store's precision (milliseconds), so a value read back from
MongoDB equals the value written."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)

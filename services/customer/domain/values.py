"""Small value types the behaviour and order parts share: references to customers and
times as the store keeps them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, StringConstraints

#: A customer id as the profile API issues them.
CUSTOMER_ID_PATTERN = r"^cus_[0-9a-f]{32}$"
#: Ids other systems give us (order, refund, behaviour ids): printable, no operators.
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"

#: How far ahead of our clock a reporter's clock may run before its times are refused.
CLOCK_SKEW = timedelta(minutes=5)

CustomerRef = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
ExternalId = Annotated[str, StringConstraints(pattern=EXTERNAL_ID_PATTERN)]


def to_store_precision(at: datetime) -> datetime:
    """UTC, cut to milliseconds: a time read back from MongoDB equals the one written, so
    an idempotent re-report compares equal."""
    at = at.astimezone(UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


#: A time with its offset (a naive time is refused: whose midnight would it be?).
Timestamp = Annotated[AwareDatetime, AfterValidator(to_store_precision)]


def future_problem(at: datetime, *, now: datetime) -> str | None:
    """Why `at` cannot be a time something already happened, or None."""
    if at > now + CLOCK_SKEW:
        return f"is in the future (more than {int(CLOCK_SKEW.total_seconds())} s ahead)"
    return None

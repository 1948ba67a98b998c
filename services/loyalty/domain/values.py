"""Value types every part of the loyalty service shares."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

#: A customer id as the customer service issues them.
CUSTOMER_ID_PATTERN = r"^cus_[0-9a-f]{32}$"
#: Ids other systems give us (order, refund, batch ids) and ids tenants choose (tier,
#: benefit, card ids): printable, no operators.
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"

CustomerRef = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
ExternalId = Annotated[str, StringConstraints(pattern=EXTERNAL_ID_PATTERN)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
#: Bounded so sums of many stay far from overflow.
MAX_POINTS = 10**9
MAX_MONEY = 10**12  # 分
Points = Annotated[int, Field(ge=1, le=MAX_POINTS)]
Money = Annotated[int, Field(ge=1, le=MAX_MONEY, description="minor units (分)")]
#: A multiplier in percent: 150 earns one and a half times the base.
Percent = Annotated[int, Field(ge=0, le=10_000)]


def to_store_precision(at: datetime) -> datetime:
    """UTC, cut to milliseconds, so a time read back from MongoDB equals the one written."""
    at = at.astimezone(UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


Timestamp = Annotated[AwareDatetime, AfterValidator(to_store_precision)]


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"

"""A tenant's coupon policy: the time zone its days and hours are counted in (daily claim
limits, usable hours at checkout) and the margin rules of the margin check. A tenant
without a policy document of its own follows the service's defaults."""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.coupon.domain.batches import MarginPolicy


class PolicyDraft(BaseModel):
    """What a tenant's administrator sets (PUT /policy)."""

    model_config = ConfigDict(extra="forbid")

    #: An IANA time zone name, e.g. "Asia/Shanghai".
    time_zone: str = Field(min_length=1, max_length=64)
    #: The least margin (percent of the discounted price) a discounted order may keep.
    min_margin_percent: int = Field(ge=0, le=100)
    #: The share of the price taken as cost when a batch is checked at configuration.
    cost_ratio_percent: int = Field(ge=0, le=100)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not an IANA time zone name") from None
        return name


class TenantPolicy(PolicyDraft):
    """A tenant's policy as it applies: its own document, or the defaults (`own` False)."""

    model_config = ConfigDict(extra="ignore")

    own: bool = False
    updated_by: str | None = None
    updated_at: datetime | None = None

    @cached_property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.time_zone)

    @cached_property
    def margin(self) -> MarginPolicy:
        return MarginPolicy(
            min_margin_percent=self.min_margin_percent,
            cost_ratio_percent=self.cost_ratio_percent,
        )

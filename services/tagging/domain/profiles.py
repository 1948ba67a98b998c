"""What tagging knows of a customer: its own read model, fed by customer events."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CustomerProfile(BaseModel):
    customer_id: str
    tenant: str
    display_name: str
    source_channel: str
    lifecycle_stage: str
    registered_at: datetime
    #: False once merged into another customer (kept so an undone merge can restore it).
    active: bool = True
    tags: list[str] = Field(default_factory=list)


class TenantPortrait(BaseModel):
    """The tenant's whole audience at a glance (人群画像 of "everyone")."""

    tenant: str
    customers: int = 0
    by_source_channel: dict[str, int] = Field(default_factory=dict)
    by_lifecycle_stage: dict[str, int] = Field(default_factory=dict)

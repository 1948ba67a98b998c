"""The customer profile and its lifecycle."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class SourceChannel(StrEnum):
    STORE = "store"
    MINI_PROGRAM = "mini_program"
    APP = "app"
    PARTNER = "partner"
    IMPORT = "import"
    WEB = "web"


class LifecycleStage(StrEnum):
    LEAD = "lead"
    PROSPECT = "prospect"
    CUSTOMER = "customer"
    AT_RISK = "at_risk"
    CHURNED = "churned"


class Customer(BaseModel):
    id: str
    tenant: str
    display_name: str
    source_channel: SourceChannel
    lifecycle_stage: LifecycleStage
    registered_at: datetime
    owner_id: str | None = None
    version: int = Field(default=1, ge=1)


def new_customer_id() -> str:
    return f"cus_{uuid.uuid4().hex}"


def register(
    *, tenant: str, display_name: str, source_channel: SourceChannel, at: datetime
) -> Customer:
    """A new profile starts as a lead until a first order makes it a customer."""
    return Customer(
        id=new_customer_id(),
        tenant=tenant,
        display_name=display_name.strip(),
        source_channel=source_channel,
        lifecycle_stage=LifecycleStage.LEAD,
        registered_at=at,
    )

"""The customer profile: who they are, where they came from, their lifecycle stage and owner.

Pure: no I/O. Personal data (mobile, email, street address, ID number) is held in clear
here; the store encrypts it at rest and the API masks it for callers without the right."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

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


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class Status(StrEnum):
    ACTIVE = "active"
    MERGED = "merged"
    ERASED = "erased"


class IdentityKind(StrEnum):
    MINI_PROGRAM_OPENID = "mini_program_openid"
    UNION_ID = "union_id"
    APP_USER_ID = "app_user_id"
    STORE_MEMBER_NO = "store_member_no"


class Identity(BaseModel):
    """An id the customer has on another platform; unique per tenant."""

    kind: IdentityKind
    value: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-.:@]+$")

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.value}"


class Address(BaseModel):
    country: str = Field(default="CN", max_length=2)
    province: str | None = Field(default=None, max_length=40)
    city: str | None = Field(default=None, max_length=40)
    district: str | None = Field(default=None, max_length=40)
    #: The personal part: encrypted at rest, masked in answers.
    street: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=12)


class StageChange(BaseModel):
    from_stage: LifecycleStage
    to_stage: LifecycleStage
    reason: str
    at: datetime
    by: str = "system"


class OwnerChange(BaseModel):
    from_owner: str | None
    to_owner: str | None
    reason: str
    at: datetime
    by: str


class Customer(BaseModel):
    id: str
    tenant: str
    display_name: str
    mobile: str | None = None
    email: str | None = None
    gender: Gender = Gender.UNKNOWN
    birthday: date | None = None
    address: Address | None = None
    id_number: str | None = None
    source_channel: SourceChannel
    lifecycle_stage: LifecycleStage
    stage_history: list[StageChange] = Field(default_factory=list)
    owner_id: str | None = None
    owner_history: list[OwnerChange] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    identities: list[Identity] = Field(default_factory=list)
    status: Status = Status.ACTIVE
    merged_into: str | None = None
    registered_at: datetime
    updated_at: datetime
    version: int = Field(default=1, ge=1)


#: Fields that hold personal data: encrypted at rest, masked in answers and change logs.
PII_FIELDS = frozenset({"mobile", "email", "id_number", "address.street"})


def new_customer_id() -> str:
    return f"cus_{uuid.uuid4().hex}"


def register(
    *,
    tenant: str,
    display_name: str,
    source_channel: SourceChannel,
    at: datetime,
    by: str = "system",
    **profile: Any,
) -> Customer:
    """A new profile starts as a lead until a first order makes it a customer."""
    customer = Customer(
        id=new_customer_id(),
        tenant=tenant,
        display_name=display_name.strip(),
        source_channel=source_channel,
        lifecycle_stage=LifecycleStage.LEAD,
        registered_at=at,
        updated_at=at,
        **profile,
    )
    if customer.owner_id:
        customer.owner_history.append(
            OwnerChange(
                from_owner=None, to_owner=customer.owner_id, reason="registered", at=at, by=by
            )
        )
    return customer

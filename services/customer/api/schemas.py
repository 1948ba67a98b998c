"""Request and response shapes of the profile API. Every field has a type, so an
operator-shaped value (`{"$ne": null}`) is refused before anything runs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from servicekit.context import Actor
from services.customer.domain.customer import (
    Address,
    Customer,
    Gender,
    Identity,
    LifecycleStage,
    OwnerChange,
    SourceChannel,
    StageChange,
    Status,
)
from services.customer.domain.personal_data import masked

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Contact = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
StaffId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@-]{1,64}$")]
CustomValue = str | int | float | bool | list[str] | None
CustomValues = Annotated[dict[str, CustomValue], Field(max_length=100)]

#: Roles that may see personal data in clear (the gateway's roles issue assigns them).
PERSONAL_DATA_ROLES = ("admin", "pii_viewer")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterCustomer(Strict):
    display_name: Name
    source_channel: SourceChannel
    mobile: Contact | None = None
    email: Contact | None = None
    gender: Gender = Gender.UNKNOWN
    birthday: date | None = None
    address: Address | None = None
    id_number: Annotated[str, StringConstraints(max_length=18)] | None = None
    owner_id: StaffId | None = None
    custom_fields: CustomValues = Field(default_factory=dict)
    identities: Annotated[list[Identity], Field(max_length=10)] = Field(default_factory=list)


class UpdateCustomer(Strict):
    """Only the fields sent change; `null` clears an optional one."""

    display_name: Name | None = None
    mobile: Contact | None = None
    email: Contact | None = None
    gender: Gender | None = None
    birthday: date | None = None
    address: Address | None = None
    id_number: Annotated[str, StringConstraints(max_length=18)] | None = None
    custom_fields: CustomValues | None = None

    def changes(self) -> dict[str, Any]:
        given = self.model_dump(exclude_unset=True)
        if "display_name" in given and given["display_name"] is None:
            given.pop("display_name")  # a name can be changed, not removed
        return given


class ChangeStage(Strict):
    to_stage: LifecycleStage
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class AssignOwner(Strict):
    owner_id: StaffId | None
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "assigned"


class CustomerView(BaseModel):
    """A profile as the caller may see it: personal data masked unless their role allows."""

    id: str
    tenant: str
    display_name: str
    mobile: str | None
    email: str | None
    gender: Gender
    birthday: date | None
    address: Address | None
    id_number: str | None
    source_channel: SourceChannel
    lifecycle_stage: LifecycleStage
    stage_history: list[StageChange]
    owner_id: str | None
    owner_history: list[OwnerChange]
    custom_fields: dict[str, Any]
    identities: list[Identity]
    status: Status
    merged_into: str | None
    registered_at: datetime
    updated_at: datetime
    version: int
    personal_data_masked: bool

    @classmethod
    def of(cls, customer: Customer, actor: Actor) -> CustomerView:
        data = customer.model_dump()
        reveal = actor.has_role(*PERSONAL_DATA_ROLES)
        if not reveal:
            for field in ("mobile", "email", "id_number"):
                data[field] = masked(field, data[field])
            if data["address"] and data["address"].get("street"):
                data["address"]["street"] = masked("address.street", data["address"]["street"])
        return cls(**data, personal_data_masked=not reveal)

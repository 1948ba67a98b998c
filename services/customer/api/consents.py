"""Consent routes: record a grant or withdrawal, read a customer's consents, check one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, StrictBool, StringConstraints

from servicekit.context import ActorDep, TenantDep
from servicekit.runtime import RuntimeDep
from services.customer.domain.consent import (
    SOURCE_PATTERN,
    Channel,
    Consent,
    ConsentChange,
    ConsentState,
    Purpose,
    is_allowed,
)
from services.customer.service.consents import ConsentPicture, ConsentService
from services.customer.store.consents import ConsentStore
from services.customer.store.customers import CustomerStore

router = APIRouter(tags=["consents"])
#: Shape only: the profile owns the id format; an unknown id is a 404 from the store.
CustomerId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Source = Annotated[str, StringConstraints(pattern=SOURCE_PATTERN)]


async def _service(runtime: RuntimeDep) -> ConsentService:
    return ConsentService(runtime.uow, ConsentStore(runtime.db), CustomerStore(runtime.db))


ConsentsDep = Annotated[ConsentService, Depends(_service)]


class RecordConsent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: true grants, false withdraws; strictly a JSON boolean.
    granted: StrictBool
    #: Where the customer said so: mini_program_popup, store_form, import, api...
    source: Source


class ConsentView(BaseModel):
    """One channel and purpose. `state` is null and `version` 0 when nothing was ever
    recorded: such a channel is not allowed (opt-in)."""

    channel: Channel
    purpose: Purpose
    state: ConsentState | None
    allowed: bool
    source: str | None = None
    recorded_by: str | None = None
    changed_at: datetime | None = None
    version: int = 0
    #: Every change, oldest first; only with `?history=true`.
    history: list[ConsentChange] | None = None

    @classmethod
    def of(
        cls, channel: Channel, purpose: Purpose, consent: Consent | None, **extra: object
    ) -> ConsentView:
        if consent is None:
            return cls(channel=channel, purpose=purpose, state=None, allowed=False, **extra)
        fields = consent.model_dump(include={"state", "source", "recorded_by", "changed_at"})
        return cls(
            channel=channel,
            purpose=purpose,
            allowed=consent.allowed,
            version=consent.version,
            **fields,
            **extra,
        )


class CustomerConsents(BaseModel):
    customer_id: str
    consents: list[ConsentView]


class ConsentRecorded(ConsentView):
    #: false when the request repeated the current state: nothing recorded, no event.
    changed: bool


class ConsentCheck(BaseModel):
    customer_id: str
    channel: Channel
    purpose: Purpose
    allowed: bool
    #: never_recorded is not allowed: consent is opt-in.
    reason: Literal["granted", "withdrawn", "never_recorded"]
    changed_at: datetime | None = None


@router.get("/customers/{customer_id}/consents")
async def read_consents(
    customer_id: CustomerId,
    tenant: TenantDep,
    consents: ConsentsDep,
    history: Annotated[bool, Query(description="include every change, oldest first")] = False,
) -> CustomerConsents:
    """Every channel and purpose of the customer in a stable order, recorded or not."""
    picture = await consents.picture(tenant, customer_id, with_history=history)
    views = [
        ConsentView.of(channel, purpose, consent, history=_history_of(picture, channel, purpose))
        for (channel, purpose), consent in picture.current.items()
    ]
    return CustomerConsents(customer_id=customer_id, consents=views)


def _history_of(
    picture: ConsentPicture, channel: Channel, purpose: Purpose
) -> list[ConsentChange] | None:
    if picture.history is None:
        return None
    return picture.history.get((channel, purpose), [])


@router.put("/customers/{customer_id}/consents/{channel}/{purpose}")
async def record_consent(
    customer_id: CustomerId,
    channel: Channel,
    purpose: Purpose,
    body: RecordConsent,
    tenant: TenantDep,
    actor: ActorDep,
    consents: ConsentsDep,
) -> ConsentRecorded:
    """Grant or withdraw consent, effective at once. A change publishes
    `customer.consent_granted.v1` or `customer.consent_withdrawn.v1` in the same
    transaction; repeating the current state answers `changed: false` and publishes nothing."""
    result = await consents.record(
        tenant,
        customer_id,
        channel,
        purpose,
        granted=body.granted,
        source=body.source,
        recorded_by=actor.id,
    )
    return ConsentRecorded.of(channel, purpose, result.consent, changed=result.changed)


@router.get("/customers/{customer_id}/consents/{channel}/{purpose}")
async def check_consent(
    customer_id: CustomerId,
    channel: Channel,
    purpose: Purpose,
    tenant: TenantDep,
    consents: ConsentsDep,
) -> ConsentCheck:
    """May this channel be used to reach the customer for this purpose now?"""
    consent = await consents.current(tenant, customer_id, channel, purpose)
    return ConsentCheck(
        customer_id=customer_id,
        channel=channel,
        purpose=purpose,
        allowed=is_allowed(consent),
        reason=consent.state.value if consent else "never_recorded",
        changed_at=consent.changed_at if consent else None,
    )

"""A message from draft to receipt. One document per message, keyed by its dedupe key, so a
campaign, a rule or a retried job can ask for the same message twice and it is sent once.

    scheduled (waits for `not_before`) -> reserved (slots taken, provider being called)
      -> sent -> delivered | failed;  clicked is recorded beside
    suppressed (the contact-pressure check said no), held_out (a campaign's holdout)

Pure: no I/O."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from services.reach.domain.channels import Channel, Purpose, Recipient


class Status(StrEnum):
    RESERVED = "reserved"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    HELD_OUT = "held_out"


#: Statuses that count as a touch for attribution.
TOUCHES = (Status.SENT, Status.DELIVERED, Status.HELD_OUT)
#: Statuses after which nothing is sent again for the same key.
SETTLED = (Status.SENT, Status.DELIVERED, Status.FAILED, Status.SUPPRESSED, Status.HELD_OUT)


def message_id(tenant: str, dedupe_key: str) -> str:
    """A stable id from the dedupe key: the same ask always names the same message, which
    is also the idempotency key providers receive."""
    digest = hashlib.sha256(f"{tenant}\x1f{dedupe_key}".encode()).hexdigest()[:24]
    return f"msg_{digest}"


class Draft(BaseModel):
    """A message asked for, not yet decided."""

    tenant: str
    message_id: str
    dedupe_key: str
    customer_id: str
    #: Who receives it: the customer, or their advisor (`advisor_id`).
    recipient: Recipient = Recipient.CUSTOMER
    advisor_id: str | None = None
    channel: Channel
    purpose: Purpose
    template_id: str
    template_version: int
    variables: dict[str, str] = Field(default_factory=dict)
    campaign_id: str | None = None
    variant: str | None = None
    rule_id: str | None = None
    mass: bool = False
    not_before: datetime
    #: Cancels the draft when this coupon is redeemed first (an expiry reminder).
    coupon_id: str | None = None


def draft_for(tenant: str, dedupe_key: str, *, not_before: datetime, **fields: object) -> Draft:
    return Draft(
        tenant=tenant,
        message_id=message_id(tenant, dedupe_key),
        dedupe_key=dedupe_key,
        not_before=not_before,
        **fields,  # type: ignore[arg-type]
    )

"""Single sends, messages and their receipts, unsubscribes, subscription
authorisations, the tenant's contact policy, and the sandbox's outbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from servicekit.clock import utcnow
from servicekit.context import TenantDep
from servicekit.errors import NotFound
from servicekit.mongo import Document
from servicekit.runtime import RuntimeDep
from services.reach.api.deps import CustomerId, MessageId, ReachDep
from services.reach.domain.channels import Channel, Purpose
from services.reach.domain.messages import draft_for
from services.reach.domain.pressure import Policy
from services.reach.providers.sandbox import received
from services.reach.service.receipts import Receipts
from services.reach.service.unsubscribe import unsubscribe

router = APIRouter(tags=["messages"])
#: A single send still reserved after this long is taken for abandoned and sent again.
ABANDONED = timedelta(seconds=60)
Key = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,120}$")]
Value = Annotated[str, Field(max_length=500)]


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")
    channel: Channel
    purpose: Purpose
    template_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    template_version: int | None = Field(None, ge=1)
    variables: dict[Annotated[str, Field(pattern=r"^[a-z_]{1,30}$")], Value] = Field(
        default_factory=dict, max_length=20
    )
    #: The same key never sends twice (a retried request, a repeated business event).
    dedupe_key: Key


class MessageView(BaseModel):
    message_id: str
    customer_id: str
    channel: str
    purpose: str
    status: str
    reason: str | None = None
    template_id: str
    template_version: int
    campaign_id: str | None = None
    variant: str | None = None
    rule_id: str | None = None
    #: `staff` for a notice of an ops alert (`alert_id`) to a team's contact.
    recipient: str | None = None
    alert_id: str | None = None
    provider: str | None = None
    content: dict[str, Any] | None = None
    at: datetime
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    clicked_at: datetime | None = None

    @classmethod
    def of(cls, doc: Document) -> MessageView:
        return cls(message_id=doc["_id"], **{k: v for k, v in doc.items() if k in cls.model_fields})


@router.post("/messages", status_code=status.HTTP_200_OK)
async def send_message(body: SendRequest, tenant: TenantDep, reach: ReachDep) -> MessageView:
    """Send one message now, through the contact-pressure check. The answer says what
    happened: sent or delivered, suppressed with the reason, or deferred (`scheduled`)."""
    template = await reach.template_service.get(tenant, body.template_id, body.template_version)
    draft = draft_for(
        tenant,
        f"api:{body.dedupe_key}",
        not_before=utcnow(),
        **body.model_dump(exclude={"dedupe_key", "template_version"}),
        template_version=template.version,
    )
    await reach.dispatcher.dispatch(tenant, [draft], resend_reserved_after=ABANDONED)
    doc = await reach.messages.get(tenant, draft.message_id)
    if doc is None:  # deferred past quiet hours, or a cap slot to retry: it waits as a draft
        return MessageView(
            message_id=draft.message_id,
            customer_id=draft.customer_id,
            channel=str(draft.channel),
            purpose=str(draft.purpose),
            status="scheduled",
            template_id=draft.template_id,
            template_version=draft.template_version,
            at=utcnow(),
        )
    return MessageView.of(doc)


@router.get("/messages/{message_id}")
async def get_message(message_id: MessageId, tenant: TenantDep, reach: ReachDep) -> MessageView:
    doc = await reach.messages.get(tenant, message_id)
    if doc is None:
        raise NotFound(f"no message {message_id}", code="message_not_found")
    return MessageView.of(doc)


@router.get("/customers/{customer_id}/messages")
async def customer_messages(
    customer_id: CustomerId, tenant: TenantDep, reach: ReachDep
) -> list[MessageView]:
    """The customer's latest 50 messages, newest first, with those sent to customers since
    merged into it (the same person was reached)."""
    people = await reach.audience.same_person(tenant, customer_id)
    return [MessageView.of(d) for d in await reach.messages.of_customers(tenant, people)]


class Receipt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str = Field(pattern=r"^msg_[0-9a-f]{24}$")
    status: Annotated[str, Field(pattern=r"^(delivered|failed)$")]
    reason: str | None = Field(None, max_length=300)
    at: datetime | None = None


class ReceiptOutcome(BaseModel):
    recorded: bool


@router.post("/receipts")
async def record_receipt(body: Receipt, tenant: TenantDep, reach: ReachDep) -> ReceiptOutcome:
    """A provider's delivery receipt, sent by a caller the gateway authenticated as the
    tenant; a repeated one changes nothing. (Providers outside call the public receipt
    routes instead, see api/public.py.)"""
    receipts = Receipts(reach.dispatcher.uow, reach.messages)
    at = body.at or utcnow()
    if body.status == "delivered":
        return ReceiptOutcome(recorded=await receipts.delivered(tenant, body.message_id, at))
    return ReceiptOutcome(
        recorded=await receipts.failed(tenant, body.message_id, body.reason or "undelivered", at)
    )


class Unsubscribe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    source: str = Field("unsubscribe_link", pattern=r"^[a-z][a-z0-9_]{0,39}$")


@router.post("/customers/{customer_id}/unsubscribe", status_code=status.HTTP_202_ACCEPTED)
async def unsubscribe_customer(
    customer_id: CustomerId, body: Unsubscribe, tenant: TenantDep, reach: ReachDep
) -> dict[str, str]:
    """Withdraw the channel's marketing consent at once (no marketing message is sent from
    this moment); the customer service is told right after, with retries."""
    forward = await unsubscribe(
        reach.dispatcher.uow, reach.audience, tenant, customer_id, body.channel, body.source
    )
    return {"forward_id": forward}


class Authorisation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform_template_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    count: int = Field(1, ge=1, le=10)


@router.post("/customers/{customer_id}/subscription-authorisations")
async def authorise(
    customer_id: CustomerId, body: Authorisation, tenant: TenantDep, reach: ReachDep
) -> dict[str, int]:
    """The customer accepted a mini-program one-time subscription: one message each."""
    available = await reach.audience.authorise(
        tenant, customer_id, body.platform_template_id, body.count
    )
    return {"available": available}


@router.get("/policy")
async def get_policy(tenant: TenantDep, reach: ReachDep) -> Policy:
    return await reach.audience.policy(tenant)


@router.put("/policy")
async def set_policy(body: Policy, tenant: TenantDep, reach: ReachDep) -> Policy:
    """The tenant's time zone, quiet hours and frequency caps per channel."""
    await reach.audience.save_policy(tenant, body)
    return body


@router.get("/sandbox/messages")
async def sandbox_messages(
    tenant: TenantDep,
    runtime: RuntimeDep,
    customer_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[dict[str, Any]]:
    """What the sandbox provider received, newest first (the console's outbox)."""
    return await received(runtime.db, tenant, customer_id, limit)

"""Delivery receipts (delivered, failed with a reason), clicks on tracked links, and
conversions: each recorded on the message once, with its event."""

from __future__ import annotations

from datetime import datetime, timedelta

from contracts.customer import OrderPaid
from contracts.reach import ConversionAttributed, MessageClicked, MessageDelivered, MessageFailed
from servicekit.clock import utcnow
from servicekit.errors import NotFound
from servicekit.mongo import Document
from servicekit.unit_of_work import Tx, UnitOfWork
from services.reach.domain.conversion import last_touch
from services.reach.domain.messages import Status
from services.reach.store.audience import AudienceStore
from services.reach.store.campaigns import CampaignStore
from services.reach.store.messages import MessageStore


class Receipts:
    def __init__(self, uow: UnitOfWork, messages: MessageStore) -> None:
        self.uow = uow
        self.messages = messages

    async def delivered(self, tenant: str, message_id: str, at: datetime) -> bool:
        """Record a delivery; False when it was known already (a repeated receipt)."""
        return await self.uow.run(lambda tx: self.delivered_in(tx, tenant, message_id, at))

    async def failed(self, tenant: str, message_id: str, reason: str, at: datetime) -> bool:
        return await self.uow.run(lambda tx: self.failed_in(tx, tenant, message_id, reason, at))

    async def delivered_in(self, tx: Tx, tenant: str, message_id: str, at: datetime) -> bool:
        """`delivered` within the caller's transaction (a call's outcome with its task)."""
        fields = {"status": str(Status.DELIVERED), "delivered_at": at}
        before = await self._apply(tx, tenant, message_id, fields, str(Status.SENT))
        if before is None:
            return False
        await tx.emit(MessageDelivered(**_common(before), delivered_at=at), tenant=tenant)
        return True

    async def failed_in(
        self, tx: Tx, tenant: str, message_id: str, reason: str, at: datetime
    ) -> bool:
        fields = {"status": str(Status.FAILED), "reason": reason, "failed_at": at}
        before = await self._apply(tx, tenant, message_id, fields, str(Status.SENT))
        if before is None:
            return False
        await tx.emit(MessageFailed(**_common(before), reason=reason, failed_at=at), tenant=tenant)
        return True

    async def report(
        self, tenant: str, message_id: str, delivered: bool, reason: str | None, at: datetime
    ) -> bool:
        """A provider's report on one of the tenant's messages; False when it changed
        nothing (repeated, or no such message of this tenant)."""
        try:
            if delivered:
                return await self.delivered(tenant, message_id, at)
            return await self.failed(tenant, message_id, reason or "undelivered", at)
        except NotFound:
            return False

    async def clicked(self, message_id: str) -> Document:
        """Record the first click of a message's link; the message (its tenant and target).
        The caller has checked the link's signature: `message_id` is one reach sent."""
        doc = await self.messages.by_id(message_id)
        if doc is None or not doc.get("link_url"):
            raise NotFound("no such link", code="link_not_found")
        tenant, now = doc["tenant"], utcnow()

        async def work(tx: Tx) -> None:
            only_if = {"clicked_at": None}
            before = await self.messages.receipt(
                tenant, message_id, {"clicked_at": now}, only_if=only_if, session=tx.session
            )
            if before is not None:
                await tx.emit(MessageClicked(**_common(before), clicked_at=now), tenant=tenant)

        await self.uow.run(work)
        return doc

    async def _apply(
        self, tx: Tx, tenant: str, message_id: str, fields: Document, status: str
    ) -> Document | None:
        before = await self.messages.receipt(
            tenant, message_id, fields, only_if={"status": status}, session=tx.session
        )
        if before is None and await self.messages.get(tenant, message_id) is None:
            raise NotFound(f"no message {message_id}", code="message_not_found")
        return before


def _common(doc: Document) -> dict[str, str | None]:
    return {
        "message_id": doc["_id"],
        "customer_id": doc["customer_id"],
        "channel": doc["channel"],
        "campaign_id": doc.get("campaign_id"),
    }


async def attribute(tx: Tx, tenant: str, order: OrderPaid, window: timedelta) -> bool:
    """Attribute a paid order to the last touch before it within `window` (a held-out
    customer's conversion goes to the holdout); once per order. Touches of the customers
    merged into the buyer count: they reached the same person."""
    messages = MessageStore(tx.db)
    people = await AudienceStore(tx.db).same_person(tenant, order.customer_id, tx.session)
    touch = last_touch(
        await messages.touches(tenant, people, order.paid_at - window),
        order.paid_at,
        window,
    )
    if touch is None:
        return False
    doc = {
        "_id": f"{tenant}/{order.order_id}",
        "tenant": tenant,
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "message_id": touch.message_id,
        "campaign_id": touch.campaign_id,
        "rule_id": touch.rule_id,
        "variant": touch.variant,
        "amount": order.amount,
        "paid_at": order.paid_at,
    }
    if not await CampaignStore(tx.db).add_conversion(doc, tx.session):
        return False
    event = ConversionAttributed(**{k: v for k, v in doc.items() if k not in {"_id", "tenant"}})
    await tx.emit(event, tenant=tenant)
    return True

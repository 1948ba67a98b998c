"""Webhook deliveries to partners: an outbox of what to tell them. An entry is written in the
transaction of what it reports (a partner offer given, a coupon.redeemed event handled), with
an id derived from that cause, so it exists exactly once. A sender takes one with a
conditional update that leases it, so two replicas never send one at the same time; a lease
that lapses (a sender died) lets another take it over. Conditional `update_one`s, never
`find_one_and_update` (the embedded store answers it in time proportional to the
collection, and this one only grows)."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.mongo import Document, Index
from services.coupon.domain.partners import DeliveryState

DELIVERIES = "partner_webhook_deliveries"

INDEXES = [
    Index(DELIVERIES, [("state", 1), ("next_at", 1)]),
    Index(DELIVERIES, [("tenant", 1), ("partner_id", 1), ("created_at", -1)]),
]


class Delivery(BaseModel):
    id: str
    tenant: str
    partner_id: str
    #: What happened, as the partner reads it (`coupon.redeemed`, `partner_offer.given`).
    type: str
    data: dict[str, Any]
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    last_error: str | None = None
    next_at: datetime
    lease_until: datetime | None = None
    created_at: datetime
    delivered_at: datetime | None = None


def _delivery(doc: Document) -> Delivery:
    return Delivery.model_validate({**doc, "id": doc["_id"]})


class DeliveryStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.deliveries = db[DELIVERIES]

    async def enqueue(self, delivery: Delivery, session: AsyncClientSession) -> None:
        """Record the delivery once: a second enqueue of one id changes nothing."""
        doc = {"_id": delivery.id, **delivery.model_dump(mode="python", exclude={"id"})}
        with contextlib.suppress(DuplicateKeyError):
            await self.deliveries.insert_one(doc, session=session)

    async def take_due(self, now: datetime, lease: timedelta) -> Delivery | None:
        """A pending delivery that is due, or one whose sender's lease lapsed, leased now.
        Read one, then lease it only if it is still as read (another sender may have taken
        it meanwhile: then the next one)."""
        due = {
            "$or": [
                {"state": str(DeliveryState.PENDING), "next_at": {"$lte": now}},
                {"state": str(DeliveryState.DELIVERING), "lease_until": {"$lte": now}},
            ]
        }
        for _ in range(3):
            doc = await self.deliveries.find_one(due)
            if doc is None:
                return None
            leased = {"state": str(DeliveryState.DELIVERING), "lease_until": now + lease}
            result = await self.deliveries.update_one(
                {"_id": doc["_id"], "state": doc["state"], "lease_until": doc.get("lease_until")},
                {"$set": leased},
            )
            if result.modified_count == 1:
                return _delivery({**doc, **leased})
        return None

    async def attempted(self, delivery_id: str, error: str | None) -> None:
        await self.deliveries.update_one(
            {"_id": delivery_id}, {"$inc": {"attempts": 1}, "$set": {"last_error": error}}
        )

    async def settle(self, delivery_id: str, state: DeliveryState, now: datetime) -> None:
        fields: dict[str, Any] = {"state": str(state), "lease_until": None}
        if state == DeliveryState.DELIVERED:
            fields["delivered_at"] = now
        await self.deliveries.update_one({"_id": delivery_id}, {"$set": fields})

    async def get(self, tenant: str, delivery_id: str) -> Delivery | None:
        doc = await self.deliveries.find_one({"_id": delivery_id, "tenant": tenant})
        return _delivery(doc) if doc else None

    async def listed(
        self, tenant: str, partner_id: str | None, state: DeliveryState | None, limit: int
    ) -> list[Delivery]:
        query: dict[str, Any] = {"tenant": tenant}
        if partner_id:
            query["partner_id"] = partner_id
        if state:
            query["state"] = str(state)
        docs = await self.deliveries.find(query).sort("created_at", -1).limit(limit).to_list()
        return [_delivery(d) for d in docs]

    async def replay(self, tenant: str, delivery_id: str, now: datetime) -> Delivery | None:
        """A failed delivery goes back to pending with a fresh count of attempts."""
        result = await self.deliveries.update_one(
            {"_id": delivery_id, "tenant": tenant, "state": str(DeliveryState.FAILED)},
            {"$set": {"state": str(DeliveryState.PENDING), "attempts": 0, "next_at": now}},
        )
        return await self.get(tenant, delivery_id) if result.modified_count == 1 else None

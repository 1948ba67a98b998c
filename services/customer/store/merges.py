"""Merge records, and the moves of a customer's records from one customer id to another.

A merge record keeps both customers' before-images sealed as the customer store seals them,
so the record is no weaker a copy of personal data than the profile itself.

The moves touch collections other stores own (consents, behaviour, orders, follow-ups,
statistics): re-keying by customer id is the one write they all share, done here by the
natural key each record has, so the merge record can name every record it moved.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.customer.domain.consent import Consent
from services.customer.domain.merge import MergeRecord, MergeStatus
from services.customer.domain.orders import Order
from services.customer.domain.purchase_stats import PurchaseStats
from services.customer.store.behaviour import BEHAVIOUR
from services.customer.store.consents import CONSENT_HISTORY, CONSENTS
from services.customer.store.customers import CustomerRecords
from services.customer.store.follow_ups import FOLLOW_UPS
from services.customer.store.orders import ORDERS, PURCHASE_STATS

MERGES = "customer_merges"
INDEXES = [
    Index(MERGES, [("tenant", 1), ("survivor_id", 1), ("merged_at", -1)], name="by_survivor"),
    Index(MERGES, [("tenant", 1), ("merged_id", 1), ("merged_at", -1)], name="by_merged"),
]
IMAGES = ("survivor_before", "merged_before")


class MergeStore:
    def __init__(self, db: AsyncDatabase[Document], customers: CustomerRecords) -> None:
        self._merges = db[MERGES]
        self._customers = customers

    async def add(self, merge: MergeRecord, session: AsyncClientSession) -> None:
        await self._merges.insert_one(self._to_doc(merge), session=session)

    async def mark_undone(self, merge: MergeRecord, session: AsyncClientSession) -> bool:
        """Mark the merge undone if it still is done; False if another undo got there."""
        result = await self._merges.update_one(
            {"_id": merge.id, "tenant": merge.tenant, "status": str(MergeStatus.DONE)},
            {
                "$set": {
                    "status": str(MergeStatus.UNDONE),
                    "undone_at": merge.undone_at,
                    "undone_by": merge.undone_by,
                }
            },
            session=session,
        )
        return result.modified_count == 1

    async def get(
        self, tenant: str, merge_id: str, *, session: AsyncClientSession | None = None
    ) -> MergeRecord | None:
        doc = await self._merges.find_one({"_id": merge_id, "tenant": tenant}, session=session)
        return self._from_doc(doc) if doc else None

    async def of_customer(self, tenant: str, customer_id: str) -> list[MergeRecord]:
        """Every merge the customer took part in, as survivor or duplicate, newest first."""
        query = {
            "tenant": tenant,
            "$or": [{"survivor_id": customer_id}, {"merged_id": customer_id}],
        }
        docs = await self._merges.find(query).sort("merged_at", -1).limit(500).to_list()
        return [self._from_doc(d) for d in docs]

    async def forget_images(
        self, tenant: str, customer_ids: list[str], session: AsyncClientSession
    ) -> None:
        """Erasure: drop the before-images of every merge these customers took part in
        (either image holds the same person's data once they were merged)."""
        query = {
            "tenant": tenant,
            "$or": [{"survivor_id": {"$in": customer_ids}}, {"merged_id": {"$in": customer_ids}}],
        }
        images = dict.fromkeys(IMAGES) | {"survivor_consents_before": []}
        await self._merges.update_many(query, {"$set": images}, session=session)

    def _to_doc(self, merge: MergeRecord) -> Document:
        doc = merge.model_dump(mode="python", exclude=set(IMAGES) | {"id"})
        doc["_id"] = merge.id
        for image in IMAGES:
            customer = getattr(merge, image)
            doc[image] = self._customers.sealed(customer) if customer else None
        return doc

    def _from_doc(self, doc: Document) -> MergeRecord:
        data = {k: v for k, v in doc.items() if k not in IMAGES}
        data["id"] = data.pop("_id")
        for image in IMAGES:
            data[image] = self._customers.unsealed(doc[image]) if doc.get(image) else None
        return MergeRecord.model_validate(data)


class RecordMover:
    """Re-keys a customer's records to another customer id, by natural key."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def keys(
        self, collection: str, key: str, tenant: str, customer_id: str, session: AsyncClientSession
    ) -> list[str]:
        cursor = self._db[collection].find(
            {"tenant": tenant, "customer_id": customer_id}, {key: 1}, session=session
        )
        return [doc[key] async for doc in cursor]

    async def move(
        self,
        collection: str,
        key: str,
        tenant: str,
        keys: list[str],
        to: str,
        session: AsyncClientSession,
    ) -> None:
        if keys:
            await self._db[collection].update_many(
                {"tenant": tenant, key: {"$in": keys}},
                {"$set": {"customer_id": to}},
                session=session,
            )

    async def behaviour_ids(
        self, tenant: str, customer_id: str, s: AsyncClientSession
    ) -> list[str]:
        return await self.keys(BEHAVIOUR, "behaviour_id", tenant, customer_id, s)

    async def order_ids(self, tenant: str, customer_id: str, s: AsyncClientSession) -> list[str]:
        return await self.keys(ORDERS, "order_id", tenant, customer_id, s)

    async def follow_up_ids(
        self, tenant: str, customer_id: str, s: AsyncClientSession
    ) -> list[str]:
        return await self.keys(FOLLOW_UPS, "_id", tenant, customer_id, s)

    async def move_behaviour(
        self, tenant: str, ids: list[str], to: str, s: AsyncClientSession
    ) -> None:
        await self.move(BEHAVIOUR, "behaviour_id", tenant, ids, to, s)

    async def move_orders(
        self, tenant: str, ids: list[str], to: str, s: AsyncClientSession
    ) -> None:
        await self.move(ORDERS, "order_id", tenant, ids, to, s)

    async def move_follow_ups(
        self, tenant: str, ids: list[str], to: str, s: AsyncClientSession
    ) -> None:
        await self.move(FOLLOW_UPS, "_id", tenant, ids, to, s)

    async def orders_of(self, tenant: str, customer_id: str, s: AsyncClientSession) -> list[Order]:
        query = {"tenant": tenant, "customer_id": customer_id}
        return [Order.model_validate(d) async for d in self._db[ORDERS].find(query, session=s)]

    # --- consents: the current record's id names the customer, so a move re-creates it ---

    async def consents(self, tenant: str, customer_id: str, s: AsyncClientSession) -> list[Consent]:
        cursor = self._db[CONSENTS].find({"tenant": tenant, "customer_id": customer_id}, session=s)
        return [Consent.model_validate(_without_id(d)) async for d in cursor]

    async def move_consent(self, consent: Consent, to: str, s: AsyncClientSession) -> None:
        """Move one consent (current state and whole history) to another customer id."""
        moved = consent.model_copy(update={"customer_id": to})
        await self._db[CONSENTS].delete_one({"_id": _consent_id(consent)}, session=s)
        await self._db[CONSENTS].insert_one(_consent_doc(moved), session=s)
        await self._db[CONSENT_HISTORY].update_many(
            _history_query(consent), {"$set": {"customer_id": to}}, session=s
        )

    async def put_consent(self, consent: Consent, s: AsyncClientSession) -> None:
        """Write a consent's current state as given (an undo's before-image), dropping the
        history entries written after its version."""
        await self._db[CONSENTS].replace_one(
            {"_id": _consent_id(consent)}, _consent_doc(consent), upsert=True, session=s
        )
        later = _history_query(consent) | {"version": {"$gt": consent.version}}
        await self._db[CONSENT_HISTORY].delete_many(later, session=s)

    # --- purchase statistics: one document per customer --------------------------------

    async def stats(
        self, tenant: str, customer_id: str, s: AsyncClientSession
    ) -> PurchaseStats | None:
        doc = await self._db[PURCHASE_STATS].find_one(
            {"tenant": tenant, "customer_id": customer_id}, session=s
        )
        return PurchaseStats.model_validate(doc) if doc else None

    async def put_stats(
        self, tenant: str, customer_id: str, stats: PurchaseStats | None, s: AsyncClientSession
    ) -> None:
        """Replace the customer's statistics (None: remove them). The version moves on, so
        an order writer holding the old one retries instead of overwriting."""
        query = {"tenant": tenant, "customer_id": customer_id}
        current = await self._db[PURCHASE_STATS].find_one(query, {"version": 1}, session=s)
        if stats is None:
            await self._db[PURCHASE_STATS].delete_many(query, session=s)
            return
        version = max(stats.version, current["version"] if current else 0) + 1
        doc = {"tenant": tenant, **stats.model_dump(), "customer_id": customer_id}
        doc["version"] = version
        await self._db[PURCHASE_STATS].replace_one(query, doc, upsert=True, session=s)

    # --- erasure -----------------------------------------------------------------------

    async def delete_all(
        self, collection: str, tenant: str, customer_id: str, s: AsyncClientSession
    ) -> int:
        query = {"tenant": tenant, "customer_id": customer_id}
        return (await self._db[collection].delete_many(query, session=s)).deleted_count

    async def strip_orders(
        self, tenant: str, customer_id: str, to: str, s: AsyncClientSession
    ) -> None:
        """Keep amounts, lines and dates for business totals; detach them from the person
        (an id no one can link back) and drop the free-text cancel reason."""
        await self._db[ORDERS].update_many(
            {"tenant": tenant, "customer_id": customer_id},
            {"$set": {"customer_id": to, "cancel_reason": None}},
            session=s,
        )


def _consent_id(consent: Consent) -> str:
    # The consent store's id scheme: tenant/customer/channel/purpose.
    return f"{consent.tenant}/{consent.customer_id}/{consent.channel}/{consent.purpose}"


def _consent_doc(consent: Consent) -> Document:
    return consent.model_dump(mode="python") | {"_id": _consent_id(consent)}


def _history_query(consent: Consent) -> Document:
    return {
        "tenant": consent.tenant,
        "customer_id": consent.customer_id,
        "channel": str(consent.channel),
        "purpose": str(consent.purpose),
    }


def _without_id(doc: Document) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_id"}

"""The facts read model: one document per customer with what tag rules and segments read,
kept from the customer service's events; and the custom field keys seen per tenant.

Behaviour and consents are stored as lists, not maps: their keys (`sms.marketing`, a
category value) may hold dots, which MongoDB field names must not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.clock import utcnow
from servicekit.mongo import Document, Index
from services.tagging.domain.facts_updates import Daily, FactsRecord
from services.tagging.domain.rules.catalogue import CustomFieldType
from services.tagging.domain.rules.facts import BehaviourKey, PurchaseFacts

FACTS = "customer_facts"
CUSTOM_FIELD_KEYS = "custom_field_keys"
INDEXES = [
    Index(FACTS, [("tenant", 1), ("customer_id", 1)], unique=True, name="by_customer"),
    Index(FACTS, [("tenant", 1), ("updated_at", 1)], name="changes"),
]
#: The state of a forgotten (erased) customer's document: kept as a tombstone without data,
#: so the audience engine's change feed sees the customer go.
ERASED = "erased"
Session = AsyncClientSession | None


def _id(tenant: str, customer_id: str) -> str:
    return f"{tenant}:{customer_id}"


def to_document(record: FactsRecord) -> Document:
    return {
        "_id": _id(record.tenant, record.customer_id),
        "tenant": record.tenant,
        "customer_id": record.customer_id,
        "state": record.state,
        "merged_into": record.merged_into,
        "attributes": record.attributes,
        "custom": record.custom,
        "stats": record.stats.model_dump(),
        "stats_at": record.stats_at,
        "consents": [{"key": k, "granted": v} for k, v in sorted(record.consents.items())],
        "behaviour": [_series(key, days) for key, days in sorted(record.behaviour.items())],
    }


def _series(key: BehaviourKey, days: Daily) -> Document:
    kind, target_key, target_value = key
    counts = {day.isoformat(): n for day, n in sorted(days.items())}
    return {"kind": kind, "key": target_key, "value": target_value, "days": counts}


def from_document(doc: Mapping[str, Any]) -> FactsRecord:
    behaviour = {
        (s["kind"], s["key"], s["value"]): {date.fromisoformat(d): n for d, n in s["days"].items()}
        for s in doc.get("behaviour", [])
    }
    return FactsRecord(
        tenant=doc["tenant"],
        customer_id=doc["customer_id"],
        state=doc.get("state", "active"),
        merged_into=doc.get("merged_into"),
        attributes=doc.get("attributes", {}),
        custom=doc.get("custom", {}),
        stats=PurchaseFacts.model_validate(doc.get("stats", {})),
        stats_at=doc.get("stats_at"),
        consents={c["key"]: c["granted"] for c in doc.get("consents", [])},
        behaviour=behaviour,
    )


#: A place in the change feed: (updated_at, document id of the last change read there).
FeedPosition = tuple[datetime, str | None]


@dataclass(frozen=True)
class FactsChange:
    customer_id: str
    record: FactsRecord | None
    position: FeedPosition


class FactsStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._facts = db[FACTS]
        self._custom_keys = db[CUSTOM_FIELD_KEYS]

    async def get(
        self, tenant: str, customer_id: str, *, session: Session = None
    ) -> FactsRecord | None:
        doc = await self._facts.find_one({"_id": _id(tenant, customer_id)}, session=session)
        return from_document(doc) if doc and doc.get("state") != ERASED else None

    async def many(
        self, tenant: str, customer_ids: list[str], *, session: Session = None
    ) -> dict[str, FactsRecord]:
        """The active customers among `customer_ids`, by id."""
        query = {"_id": {"$in": [_id(tenant, c) for c in customer_ids]}, "state": "active"}
        docs = await self._facts.find(query, session=session).to_list()
        return {doc["customer_id"]: from_document(doc) for doc in docs}

    async def save(self, record: FactsRecord, session: AsyncClientSession) -> None:
        """`updated_at` is the change feed the audience engine follows."""
        doc = {**to_document(record), "updated_at": utcnow()}
        await self._facts.replace_one({"_id": doc["_id"]}, doc, upsert=True, session=session)

    async def touch(
        self, tenant: str, customer_ids: list[str], session: AsyncClientSession
    ) -> None:
        """Mark customers changed whose tags changed (tags are read with the facts)."""
        query = {"_id": {"$in": [_id(tenant, c) for c in customer_ids]}}
        await self._facts.update_many(query, {"$set": {"updated_at": utcnow()}}, session=session)

    async def forget(self, tenant: str, customer_id: str, session: AsyncClientSession) -> None:
        tombstone = {
            "_id": _id(tenant, customer_id),
            "tenant": tenant,
            "customer_id": customer_id,
            "state": ERASED,
            "updated_at": utcnow(),
        }
        await self._facts.replace_one(
            {"_id": tombstone["_id"]}, tombstone, upsert=True, session=session
        )

    async def changed_since(
        self, tenant: str, since: FeedPosition, *, limit: int
    ) -> list[FactsChange]:
        """Customers changed at or after `since`, in change order (`updated_at`, then id).
        A customer no longer active (merged, erased) comes with no facts."""
        at, after_id = since
        query: Document = {"tenant": tenant, "updated_at": {"$gte": at}}
        if after_id is not None:
            query["$or"] = [{"updated_at": {"$gt": at}}, {"_id": {"$gt": after_id}}]
        cursor = self._facts.find(query).sort([("updated_at", 1), ("_id", 1)]).limit(limit)
        return [
            FactsChange(
                customer_id=doc["customer_id"],
                record=from_document(doc) if doc.get("state") == "active" else None,
                position=(doc["updated_at"], doc["_id"]),
            )
            for doc in await cursor.to_list()
        ]

    async def tenants(self) -> list[str]:
        return sorted(await self._facts.distinct("tenant"))

    async def page(
        self, tenant: str, *, after: str | None, limit: int, session: Session = None
    ) -> list[FactsRecord]:
        """Active customers of `tenant` in customer id order, after `after`."""
        query: Document = {"tenant": tenant, "state": "active"}
        if after is not None:
            query["customer_id"] = {"$gt": after}
        cursor = self._facts.find(query, session=session).sort("customer_id", 1).limit(limit)
        return [from_document(doc) for doc in await cursor.to_list()]

    async def custom_field_types(
        self, tenant: str, *, session: Session = None
    ) -> dict[str, CustomFieldType]:
        doc = await self._custom_keys.find_one({"_id": tenant}, session=session)
        return dict((doc or {}).get("fields", {}))

    async def remember_custom_fields(
        self, tenant: str, types: Mapping[str, CustomFieldType], session: AsyncClientSession
    ) -> None:
        """Record keys not seen before. Read first, write only what is new: this is one
        document per tenant, and writing it on every profile change would make it hot."""
        known = await self.custom_field_types(tenant, session=session)
        new = {f"fields.{k}": v for k, v in types.items() if k not in known}
        if new:
            await self._custom_keys.update_one(
                {"_id": tenant}, {"$set": new}, upsert=True, session=session
            )

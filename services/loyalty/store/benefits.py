"""Benefit and card definitions, customers' grants and card holdings, and write-offs.

A write-off lowers a grant's uses with one conditional update (`uses_left >= n`, not
expired), so concurrent write-offs of the last use cannot both pass; it runs in the same
transaction as the write-off's insert, which is unique per tenant by request key."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index, update_and_read
from services.loyalty.domain.benefits import (
    Benefit,
    BenefitCard,
    BenefitKind,
    CardHolding,
    Grant,
    WriteOff,
)
from services.loyalty.store.versioned import VersionedStore

BENEFITS = "benefits"
CARDS = "benefit_cards"
GRANTS = "benefit_grants"
HOLDINGS = "card_holdings"
WRITE_OFFS = "write_offs"

INDEXES = [
    Index(BENEFITS, [("tenant", 1), ("benefit_id", 1)], unique=True, name="benefit"),
    Index(CARDS, [("tenant", 1), ("card_id", 1)], unique=True, name="card"),
    Index(GRANTS, [("tenant", 1), ("customer_id", 1), ("granted_at", -1)], name="by_customer"),
    Index(GRANTS, [("tenant", 1), ("request", 1)], unique=True, name="request"),
    Index(HOLDINGS, [("tenant", 1), ("payments", 1)], unique=True, name="payment"),
    Index(HOLDINGS, [("tenant", 1), ("customer_id", 1)], name="by_customer"),
    Index(HOLDINGS, [("expired", 1), ("expires_at", 1)], name="lapsing"),
    Index(WRITE_OFFS, [("tenant", 1), ("key", 1)], unique=True, name="key"),
    Index(WRITE_OFFS, [("tenant", 1), ("grant_id", 1), ("used_at", -1)], name="by_grant"),
]


D = TypeVar("D", bound=BaseModel)


def _definition(model: type[D], doc: Document) -> D:
    """Definitions refuse unknown fields: the store's own are left out."""
    return model.model_validate({k: v for k, v in doc.items() if k not in ("_id", "tenant")})


class DefinitionStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._benefits = db[BENEFITS]
        self._cards = db[CARDS]

    async def put_benefit(self, tenant: str, benefit: Benefit) -> None:
        await self._put(self._benefits, tenant, {"benefit_id": benefit.benefit_id}, benefit)

    async def put_card(self, tenant: str, card: BenefitCard) -> None:
        await self._put(self._cards, tenant, {"card_id": card.card_id}, card)

    @staticmethod
    async def _put(collection: Any, tenant: str, key: dict[str, str], item: BaseModel) -> None:
        doc = {"tenant": tenant, **item.model_dump(mode="python")}
        await collection.replace_one({"tenant": tenant, **key}, doc, upsert=True)

    async def benefit(
        self, tenant: str, benefit_id: str, *, session: AsyncClientSession | None = None
    ) -> Benefit | None:
        doc = await self._benefits.find_one(
            {"tenant": tenant, "benefit_id": benefit_id}, session=session
        )
        return _definition(Benefit, doc) if doc else None

    async def benefits(
        self,
        tenant: str,
        ids: list[str] | None = None,
        *,
        kind: BenefitKind | None = None,
        session: AsyncClientSession | None = None,
    ) -> list[Benefit]:
        query: Document = {"tenant": tenant}
        if ids is not None:
            query["benefit_id"] = {"$in": ids}
        if kind is not None:
            query["kind"] = str(kind)
        found = self._benefits.find(query, session=session).sort("benefit_id", 1)
        docs = await found.limit(500).to_list()
        return [_definition(Benefit, d) for d in docs]

    async def card(
        self, tenant: str, card_id: str, *, session: AsyncClientSession | None = None
    ) -> BenefitCard | None:
        doc = await self._cards.find_one({"tenant": tenant, "card_id": card_id}, session=session)
        return _definition(BenefitCard, doc) if doc else None

    async def cards(self, tenant: str) -> list[BenefitCard]:
        docs = await self._cards.find({"tenant": tenant}).sort("card_id", 1).limit(500).to_list()
        return [_definition(BenefitCard, d) for d in docs]


class GrantStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._grants = db[GRANTS]
        self._write_offs = db[WRITE_OFFS]

    async def add(
        self,
        tenant: str,
        grants: list[Grant],
        session: AsyncClientSession,
        *,
        request: str | None = None,
    ) -> None:
        """`request` (a direct grant's key) is unique: the same request grants once."""
        docs = [
            {
                "_id": g.grant_id,
                "tenant": tenant,
                "request": request or g.grant_id,
                **g.model_dump(),
            }
            for g in grants
        ]
        await self._grants.insert_many(docs, session=session)

    async def by_request(
        self, tenant: str, request: str, *, session: AsyncClientSession | None = None
    ) -> Grant | None:
        doc = await self._grants.find_one({"tenant": tenant, "request": request}, session=session)
        return Grant.model_validate(doc) if doc else None

    async def get(
        self, tenant: str, grant_id: str, *, session: AsyncClientSession | None = None
    ) -> Grant | None:
        doc = await self._grants.find_one({"_id": grant_id, "tenant": tenant}, session=session)
        return Grant.model_validate(doc) if doc else None

    async def for_customer(self, tenant: str, customer_id: str) -> list[Grant]:
        cursor = self._grants.find({"tenant": tenant, "customer_id": customer_id})
        return [Grant.model_validate(d) for d in await cursor.sort("granted_at", -1).to_list()]

    async def live(
        self,
        tenant: str,
        customer_id: str,
        benefit_ids: list[str],
        at: datetime,
        session: AsyncClientSession,
    ) -> list[Grant]:
        """The customer's grants of these benefits valid at `at` with uses left."""
        query = {
            "tenant": tenant,
            "customer_id": customer_id,
            "benefit_id": {"$in": benefit_ids},
            "$or": [{"expires_at": None}, {"expires_at": {"$gt": at}}],
        }
        docs = await self._grants.find(query, session=session).to_list()
        return [g for g in map(Grant.model_validate, docs) if g.usable(at)]

    async def of_source(self, tenant: str, source: str, session: AsyncClientSession) -> list[Grant]:
        cursor = self._grants.find({"tenant": tenant, "source": source}, session=session)
        return [Grant.model_validate(d) for d in await cursor.to_list()]

    async def replace(self, tenant: str, grant: Grant, session: AsyncClientSession) -> None:
        await self._grants.update_one(
            {"_id": grant.grant_id, "tenant": tenant},
            {"$set": grant.model_dump(exclude={"grant_id"})},
            session=session,
        )

    async def use(
        self, tenant: str, grant: Grant, uses: int, now: datetime, session: AsyncClientSession
    ) -> Grant | None:
        """Take `uses` if that many are left and the grant has not expired; None if not."""
        query: Document = {
            "_id": grant.grant_id,
            "tenant": tenant,
            "$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}],
        }
        if grant.uses_left is None:
            found = await self._grants.find_one(query, session=session)
            return Grant.model_validate(found) if found else None
        query["uses_left"] = {"$gte": uses}
        result = await update_and_read(
            self._grants, query, {"$inc": {"uses_left": -uses}}, session=session
        )
        return Grant.model_validate(result) if result else None

    async def give_back(
        self, tenant: str, grant_id: str, uses: int, session: AsyncClientSession
    ) -> None:
        await self._grants.update_one(
            {"_id": grant_id, "tenant": tenant, "uses_left": {"$ne": None}},
            {"$inc": {"uses_left": uses}},
            session=session,
        )

    async def record(
        self, tenant: str, write_off: WriteOff, key: str, session: AsyncClientSession
    ) -> None:
        doc = {
            "_id": write_off.write_off_id,
            "tenant": tenant,
            "key": key,
            **write_off.model_dump(),
        }
        await self._write_offs.insert_one(doc, session=session)

    async def write_off(
        self,
        tenant: str,
        *,
        write_off_id: str | None = None,
        key: str | None = None,
        session: AsyncClientSession | None = None,
    ) -> WriteOff | None:
        query: Document = {"tenant": tenant}
        query.update({"_id": write_off_id} if write_off_id else {"key": key})
        doc = await self._write_offs.find_one(query, session=session)
        return WriteOff.model_validate(doc) if doc else None

    async def mark_reversed(
        self, tenant: str, write_off: WriteOff, session: AsyncClientSession
    ) -> bool:
        """Only one reversal of a write-off wins."""
        result = await self._write_offs.update_one(
            {"_id": write_off.write_off_id, "tenant": tenant, "reversed_at": None},
            {
                "$set": {
                    "reversed_at": write_off.reversed_at,
                    "reversed_by": write_off.reversed_by,
                    "reversal_reason": write_off.reversal_reason,
                }
            },
            session=session,
        )
        return result.modified_count == 1

    async def uses_of(self, tenant: str, grant_id: str) -> list[WriteOff]:
        cursor = self._write_offs.find({"tenant": tenant, "grant_id": grant_id})
        return [WriteOff.model_validate(d) for d in await cursor.sort("used_at", -1).to_list()]


class HoldingStore(VersionedStore[CardHolding]):
    model = CardHolding

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db[HOLDINGS])

    async def by_payment(
        self, tenant: str, payment_id: str, *, session: AsyncClientSession | None = None
    ) -> CardHolding | None:
        doc = await self._docs.find_one({"tenant": tenant, "payments": payment_id}, session=session)
        return CardHolding.model_validate(doc) if doc else None

    async def for_customer(self, tenant: str, customer_id: str) -> list[CardHolding]:
        cursor = self._docs.find({"tenant": tenant, "customer_id": customer_id})
        return [CardHolding.model_validate(d) for d in await cursor.to_list()]

    async def lapsing(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(tenant, holding id) of holdings past their expiry not yet marked expired."""
        cursor = self._docs.find(
            {"expired": False, "expires_at": {"$lte": now}}, {"tenant": 1, "holding_id": 1}
        )
        return [(d["tenant"], d["holding_id"]) for d in await cursor.limit(limit).to_list()]

    async def put(
        self, tenant: str, holding: CardHolding, session: AsyncClientSession
    ) -> CardHolding:
        return await self.save(
            tenant, holding.holding_id, holding, session, customer_id=holding.customer_id
        )

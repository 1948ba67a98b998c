"""Redeem codes and the lots they were made in.

A code is stored only as its keyed digest, which is its `_id`: a redemption looks it up by
key (one read), and marks it taken with one conditional update (`customer_id` still unset),
so of two customers racing for one code exactly one takes it. The collection has no
secondary index: the store pays for each index on every insert, and a lot of 100,000
codes is inserted in chunks (one `insert_many` each)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.coupon.store.rate_windows import RATE_WINDOWS

LOTS = "code_lots"
CODES = "redeem_codes"

INDEXES = [Index(LOTS, [("tenant", 1), ("batch_id", 1), ("created_at", -1)])]


class CodeLot(BaseModel):
    id: str
    tenant: str
    batch_id: str
    count: int
    #: Codes a partner took from its quota carry the partner; staff lots none.
    partner_id: str | None = None
    created_by: str
    created_at: datetime
    #: A voided lot's codes are refused like codes that do not exist (a leaked file, a
    #: partner's answer that never arrived).
    voided_at: datetime | None = None
    voided_by: str | None = None


class RedeemCode(BaseModel):
    """A code as stored: its digest, never the code."""

    digest: str
    tenant: str
    batch_id: str
    lot_id: str
    number: int
    partner_id: str | None = None
    customer_id: str | None = None
    coupon_id: str | None = None
    taken_at: datetime | None = None

    @property
    def code_id(self) -> str:
        """The code's name in references and reports (its lot and number, not the code)."""
        return f"{self.lot_id}.{self.number}"


def _code(doc: Document) -> RedeemCode:
    return RedeemCode.model_validate({**doc, "digest": doc["_id"]})


def code_docs(lot: CodeLot, digests: list[str], first: int) -> list[Document]:
    return [
        {
            "_id": d,
            "tenant": lot.tenant,
            "batch_id": lot.batch_id,
            "lot_id": lot.id,
            "number": first + i,
            "partner_id": lot.partner_id,
        }
        for i, d in enumerate(digests)
    ]


class CodeStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.lots = db[LOTS]
        self.codes = db[CODES]
        self.windows = db[RATE_WINDOWS]

    async def add_lot(self, lot: CodeLot, session: AsyncClientSession | None = None) -> None:
        doc = {"_id": lot.id, **lot.model_dump(exclude={"id"})}
        await self.lots.insert_one(doc, session=session)

    async def add_codes(
        self, lot: CodeLot, digests: list[str], first: int, session: AsyncClientSession | None
    ) -> None:
        await self.codes.insert_many(code_docs(lot, digests, first), session=session)

    async def lot(self, tenant: str, lot_id: str) -> CodeLot | None:
        doc = await self.lots.find_one({"_id": lot_id, "tenant": tenant})
        return CodeLot.model_validate({**doc, "id": doc["_id"]}) if doc else None

    async def lots_of(
        self, tenant: str, batch_id: str | None, partner_id: str | None = None
    ) -> list[CodeLot]:
        query: dict[str, Any] = {"tenant": tenant}
        if batch_id is not None:
            query["batch_id"] = batch_id
        if partner_id is not None:
            query["partner_id"] = partner_id
        cursor = self.lots.find(query).sort("created_at", -1)
        return [CodeLot.model_validate({**d, "id": d["_id"]}) for d in await cursor.to_list(500)]

    async def void(self, tenant: str, lot_id: str, by: str, now: datetime) -> bool:
        """Void the lot; False when it was void already."""
        result = await self.lots.update_one(
            {"_id": lot_id, "tenant": tenant, "voided_at": None},
            {"$set": {"voided_at": now, "voided_by": by}},
        )
        return result.modified_count == 1

    async def used_in(self, tenant: str, lot_id: str) -> int:
        """Codes of the lot taken by a customer: a scan of the codes (no index on the lot:
        it would cost every insert of a 100,000-code lot), for one lot on demand."""
        return await self.codes.count_documents(
            {"tenant": tenant, "lot_id": lot_id, "customer_id": {"$ne": None}}
        )

    async def get(self, tenant: str, digest: str) -> RedeemCode | None:
        doc = await self.codes.find_one({"_id": digest, "tenant": tenant})
        return _code(doc) if doc else None

    async def take(self, tenant: str, digest: str, customer_id: str, now: datetime) -> bool:
        """Mark the code taken by the customer if nobody has it; False when somebody does.
        (`update_one`, not `find_one_and_update`: the embedded store answers the latter in
        time proportional to the collection, ~0.3 s at 20,000 codes.)"""
        result = await self.codes.update_one(
            {"_id": digest, "tenant": tenant, "customer_id": None},
            {"$set": {"customer_id": customer_id, "taken_at": now}},
        )
        return result.modified_count == 1

    async def give_back(self, tenant: str, digest: str, customer_id: str) -> None:
        """The customer's claim was refused (sold out, limit): the code is free again."""
        await self.codes.update_one(
            {"_id": digest, "tenant": tenant, "customer_id": customer_id, "coupon_id": None},
            {"$set": {"customer_id": None, "taken_at": None}},
        )

    async def issued(self, tenant: str, digest: str, coupon_id: str) -> None:
        await self.codes.update_one(
            {"_id": digest, "tenant": tenant}, {"$set": {"coupon_id": coupon_id}}
        )

    async def window_count(self, counter_id: str) -> int:
        """The count a rate window holds (0 before its first request): a read that does
        not count, to refuse a guesser who is already over the limit."""
        doc: dict[str, Any] | None = await self.windows.find_one({"_id": counter_id}, {"n": 1})
        return int(doc["n"]) if doc else 0

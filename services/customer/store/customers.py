from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.customer.domain.customer import Customer

CUSTOMERS = "customers"
INDEXES = [Index(CUSTOMERS, [("tenant", 1), ("_id", 1)], name="by_tenant")]


def _to_doc(customer: Customer) -> Document:
    doc = customer.model_dump()
    doc["_id"] = doc.pop("id")
    return doc


def _from_doc(doc: Document) -> Customer:
    return Customer.model_validate({**doc, "id": doc["_id"]})


class CustomerStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._customers = db[CUSTOMERS]

    async def add(self, customer: Customer, session: AsyncClientSession) -> None:
        await self._customers.insert_one(_to_doc(customer), session=session)

    async def get(self, tenant: str, customer_id: str) -> Customer | None:
        doc = await self._customers.find_one({"_id": customer_id, "tenant": tenant})
        return _from_doc(doc) if doc else None

    async def page(self, tenant: str, page: PageRequest) -> tuple[list[Customer], str | None]:
        query: dict[str, Any] = {"tenant": tenant}
        if page.after:
            query["_id"] = {"$gt": str(page.after_value("_id"))}
        cursor = self._customers.find(query).sort("_id", 1).limit(page.limit + 1)
        docs = await cursor.to_list()
        return [_from_doc(d) for d in docs[: page.limit]], next_cursor(docs, page.limit, "_id")

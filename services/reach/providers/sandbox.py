"""The sandbox provider, the embedded default: records each message where the console (and
tests) can read it, and counts it delivered at once. Idempotent by message id, so a message
re-sent after a crash is recorded once."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from servicekit.clock import utcnow
from servicekit.mongo import Document, Index
from services.reach.providers.base import Accepted, Outbound, Outcome, Provider

SANDBOX = "sandbox_messages"
INDEXES = [
    Index(SANDBOX, [("tenant", 1), ("customer_id", 1), ("received_at", -1)], name="by_customer")
]
DUPLICATE_KEY = 11000


class SandboxProvider(Provider):
    name = "sandbox"

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._messages = db[SANDBOX]

    async def send(self, message: Outbound) -> Accepted:
        return (await self.send_many([message]))[0]  # type: ignore[return-value]

    async def send_many(self, messages: list[Outbound]) -> list[Outcome]:
        now = utcnow()
        docs = [_doc(m, now) for m in messages]
        try:
            await self._messages.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(e["code"] != DUPLICATE_KEY for e in exc.details["writeErrors"]):
                raise
        return [Accepted(provider_ref=m.message_id, delivered_at=now) for m in messages]


def _doc(message: Outbound, now: Any) -> Document:
    return {
        "_id": message.message_id,
        "tenant": message.tenant,
        "customer_id": message.customer_id,
        "channel": str(message.channel),
        "campaign_id": message.campaign_id,
        "address": message.address,
        "content": message.content.model_dump(exclude_none=True),
        "received_at": now,
    }


async def received(
    db: AsyncDatabase[Document], tenant: str, customer_id: str | None, limit: int
) -> list[Document]:
    """What the sandbox took, newest first (for the console)."""
    query: Document = {"tenant": tenant}
    if customer_id:
        query["customer_id"] = customer_id
    cursor = db[SANDBOX].find(query).sort("received_at", -1).limit(limit)
    return [{"message_id": d.pop("_id"), **d} for d in await cursor.to_list()]


async def forget(
    db: AsyncDatabase[Document], tenant: str, customer_id: str, session: AsyncClientSession
) -> None:
    """Erasure: the sandbox's copies of what was said to the customer go too."""
    await db[SANDBOX].delete_many({"tenant": tenant, "customer_id": customer_id}, session=session)

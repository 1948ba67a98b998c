"""Points-for-coupon exchanges, unique per tenant by the request's key."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.loyalty.domain.exchanges import Exchange, ExchangeState
from services.loyalty.store.versioned import VersionedStore

EXCHANGES = "coupon_exchanges"

INDEXES = [
    Index(EXCHANGES, [("state", 1), ("updated_at", 1)], name="unsettled"),
    Index(EXCHANGES, [("tenant", 1), ("exchange_id", 1)], unique=True, name="exchange_id"),
]


class ExchangeStore(VersionedStore[Exchange]):
    """Keyed `tenant:key`: the same request finds its exchange."""

    model = Exchange

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db[EXCHANGES])

    async def put(self, tenant: str, exchange: Exchange, session: AsyncClientSession) -> Exchange:
        return await self.save(tenant, exchange.key, exchange, session)

    async def by_id(self, tenant: str, exchange_id: str) -> Exchange | None:
        doc = await self._docs.find_one({"tenant": tenant, "exchange_id": exchange_id})
        return Exchange.model_validate(doc) if doc else None

    async def unsettled(self, before: datetime, limit: int) -> list[tuple[str, str]]:
        """(tenant, key) of exchanges still waiting for the coupon service's answer."""
        cursor = self._docs.find(
            {"state": str(ExchangeState.DEBITED), "updated_at": {"$lt": before}},
            {"tenant": 1, "key": 1},
        )
        return [(d["tenant"], d["key"]) for d in await cursor.limit(limit).to_list()]

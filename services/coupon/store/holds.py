"""What an ended campaign still holds of its reservation, by when it can be let go.

When a campaign ends, its reservation keeps only what its coupons still usable may cost,
grouped by the time that stops (validity end, plus the lock time for a payment already
under way, rounded up to a bucket): one hold per (campaign, bucket). Using, refunding or
returning such a coupon moves its hold with the reservation, so the holds of a campaign
always add up to what it has reserved; a sweep releases each hold once its time is past,
and the campaign's reservation is zero when the last one is gone."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.coupon.store.coupons import key

HOLDS = "reservation_holds"
INDEXES = [Index(HOLDS, [("until", 1)])]


def hold_until(valid_until: datetime, lock_seconds: int, bucket_seconds: int) -> datetime:
    """When a coupon valid until `valid_until` can cost nothing more, rounded up to a bucket."""
    end = (valid_until + timedelta(seconds=lock_seconds)).timestamp()
    return datetime.fromtimestamp(math.ceil(end / bucket_seconds) * bucket_seconds, UTC)


def hold_id(tenant: str, campaign_id: str, until: datetime) -> str:
    return key(tenant, campaign_id, "hold", until.isoformat())


class HoldStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.holds = db[HOLDS]

    async def open(
        self,
        tenant: str,
        campaign_id: str,
        budget_id: str,
        amounts: dict[datetime, int],
        session: AsyncClientSession,
    ) -> None:
        """The holds of a campaign that has just ended (one insert)."""
        docs = [
            {"_id": hold_id(tenant, campaign_id, until), "tenant": tenant,
             "campaign_id": campaign_id, "budget_id": budget_id, "until": until,
             "amount": amount}
            for until, amount in sorted(amounts.items())
            if amount > 0
        ]  # fmt: skip
        if docs:
            await self.holds.insert_many(docs, session=session)

    async def add(
        self,
        tenant: str,
        campaign_id: str,
        budget_id: str,
        amounts: dict[datetime, int],
        session: AsyncClientSession,
    ) -> None:
        """Add to the campaign's holds (created when missing), by time."""
        for until, amount in amounts.items():
            if amount == 0:
                continue
            await self.holds.update_one(
                {"_id": hold_id(tenant, campaign_id, until)},
                {
                    "$inc": {"amount": amount},
                    "$setOnInsert": {
                        "tenant": tenant,
                        "campaign_id": campaign_id,
                        "budget_id": budget_id,
                        "until": until,
                    },
                },
                upsert=True,
                session=session,
            )

    async def take(
        self, tenant: str, campaign_id: str, until: datetime, amount: int,
        session: AsyncClientSession,
    ) -> bool:  # fmt: skip
        """Take `amount` off one hold, if it holds that much (False: it does not)."""
        taken = await self.holds.update_one(
            {"_id": hold_id(tenant, campaign_id, until), "amount": {"$gte": amount}},
            {"$inc": {"amount": -amount}},
            session=session,
        )
        return taken.matched_count == 1

    async def due(self, now: datetime, limit: int) -> list[Document]:
        return await self.holds.find({"until": {"$lte": now}}).limit(limit).to_list()

    async def remove(
        self, ids: list[str], now: datetime, session: AsyncClientSession
    ) -> list[Document]:
        """Delete the holds among `ids` that are due; the ones deleted (none twice)."""
        docs = await self.holds.find(
            {"_id": {"$in": ids}, "until": {"$lte": now}}, session=session
        ).to_list()
        if docs:
            await self.holds.delete_many(
                {"_id": {"$in": [d["_id"] for d in docs]}}, session=session
            )
        return docs

    async def of_campaign(self, tenant: str, campaign_id: str) -> list[Document]:
        return (
            await self.holds.find({"tenant": tenant, "campaign_id": campaign_id})
            .sort("until", 1)
            .to_list()
        )

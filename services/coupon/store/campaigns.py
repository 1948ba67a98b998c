"""Campaigns. A state change is saved only if the campaign is still in the state it was
read in, so two approvers racing cannot both approve."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.coupon.domain.campaigns import Campaign, CampaignState

CAMPAIGNS = "campaigns"

INDEXES = [Index(CAMPAIGNS, [("tenant", 1), ("_id", -1)])]


def _campaign(doc: Document) -> Campaign:
    return Campaign.model_validate({**doc, "id": doc["_id"]})


class StateMoved(Exception):
    """The campaign left the state it was read in: another writer got there first."""


class CampaignStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.campaigns = db[CAMPAIGNS]

    async def add(self, tenant: str, campaign: Campaign, session: AsyncClientSession) -> None:
        doc = campaign.model_dump(mode="python", exclude={"id"})
        await self.campaigns.insert_one(
            {"_id": campaign.id, "tenant": tenant, **doc}, session=session
        )

    async def get(
        self, tenant: str, campaign_id: str, session: AsyncClientSession | None = None
    ) -> Campaign | None:
        doc = await self.campaigns.find_one({"_id": campaign_id, "tenant": tenant}, session=session)
        return _campaign(doc) if doc else None

    async def replace(
        self,
        tenant: str,
        campaign: Campaign,
        was: CampaignState,
        session: AsyncClientSession,
    ) -> None:
        doc = campaign.model_dump(mode="python", exclude={"id"})
        result = await self.campaigns.replace_one(
            {"_id": campaign.id, "tenant": tenant, "state": str(was)},
            {"tenant": tenant, **doc},
            session=session,
        )
        if result.matched_count != 1:
            raise StateMoved(campaign.id)

    async def draw(
        self, tenant: str, campaign_id: str, inc: dict[str, int], session: AsyncClientSession
    ) -> None:
        """Move the campaign's reserved/consumed counters with a coupon's use or restore."""
        await self.campaigns.update_one(
            {"_id": campaign_id, "tenant": tenant}, {"$inc": inc}, session=session
        )

    async def page(self, tenant: str, page: PageRequest) -> tuple[list[Campaign], str | None]:
        query: dict[str, Any] = {"tenant": tenant}
        if page.after:
            query["_id"] = {"$lt": page.after_value("id")}
        docs = await self.campaigns.find(query).sort("_id", -1).limit(page.limit + 1).to_list()
        items = [_campaign(d) for d in docs]
        cursor = next_cursor([{"id": c.id} for c in items], page.limit, "id")
        return items[: page.limit], cursor

"""Campaigns, triggered rules and attributed conversions."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.mongo import Document, Index
from services.reach.domain.campaigns import Campaign, CampaignState
from services.reach.domain.rules import Rule, Trigger

CAMPAIGNS = "campaigns"
RULES = "rules"
CONVERSIONS = "conversions"
INDEXES = [
    Index(CAMPAIGNS, [("state", 1), ("send_at", 1)], name="due"),
    Index(CAMPAIGNS, [("tenant", 1), ("created_at", -1)], name="by_tenant"),
    Index(RULES, [("tenant", 1), ("trigger", 1), ("active", 1)], name="by_trigger"),
    Index(RULES, [("trigger", 1), ("active", 1)], name="by_trigger_anywhere"),
    Index(CONVERSIONS, [("tenant", 1), ("campaign_id", 1)], name="by_campaign"),
]


class CampaignStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._campaigns = db[CAMPAIGNS]
        self._rules = db[RULES]
        self._conversions = db[CONVERSIONS]

    async def add_campaign(self, campaign: Campaign) -> None:
        doc = campaign.model_dump(mode="python")
        await self._campaigns.insert_one(
            {**doc, "_id": f"{campaign.tenant}/{campaign.campaign_id}"}
        )

    async def campaign(self, tenant: str, campaign_id: str) -> Campaign | None:
        doc = await self._campaigns.find_one({"_id": f"{tenant}/{campaign_id}", "tenant": tenant})
        return _campaign(doc) if doc else None

    async def campaigns(self, tenant: str, limit: int = 100) -> list[Campaign]:
        cursor = self._campaigns.find({"tenant": tenant}).sort("created_at", -1).limit(limit)
        return [_campaign(d) for d in await cursor.to_list()]

    async def due(self, now: datetime, limit: int = 20) -> list[Campaign]:
        query = {"state": str(CampaignState.SCHEDULED), "send_at": {"$lte": now}}
        return [_campaign(d) for d in await self._campaigns.find(query).limit(limit).to_list()]

    async def start(self, campaign: Campaign, job_id: str) -> bool:
        """Move a scheduled campaign to running with its job; False when another got there."""
        result = await self._campaigns.update_one(
            {
                "_id": f"{campaign.tenant}/{campaign.campaign_id}",
                "state": str(CampaignState.SCHEDULED),
            },
            {"$set": {"state": str(CampaignState.RUNNING), "job_id": job_id}},
        )
        return result.modified_count == 1

    async def finish(self, tenant: str, campaign_id: str, state: CampaignState) -> None:
        await self._campaigns.update_one(
            {"_id": f"{tenant}/{campaign_id}"}, {"$set": {"state": str(state)}}
        )

    # ------------------------------------------------------------------ rules

    async def add_rule(self, rule: Rule) -> None:
        await self._rules.insert_one(
            {**rule.model_dump(mode="python"), "_id": f"{rule.tenant}/{rule.rule_id}"}
        )

    async def rule(self, tenant: str, rule_id: str) -> Rule | None:
        doc = await self._rules.find_one({"_id": f"{tenant}/{rule_id}", "tenant": tenant})
        return _rule(doc) if doc else None

    async def rules(self, tenant: str) -> list[Rule]:
        return [
            _rule(d)
            for d in await self._rules.find({"tenant": tenant}).sort("rule_id", 1).to_list()
        ]

    async def active_rules(
        self, tenant: str, trigger: Trigger, session: AsyncClientSession | None = None
    ) -> list[Rule]:
        query = {"tenant": tenant, "trigger": str(trigger), "active": True}
        return [_rule(d) for d in await self._rules.find(query, session=session).to_list()]

    async def active_rules_anywhere(self, trigger: Trigger) -> list[Rule]:
        """Every tenant's active rules on `trigger` (for sweeps, which no event starts)."""
        query = {"trigger": str(trigger), "active": True}
        return [_rule(d) for d in await self._rules.find(query).to_list()]

    async def set_active(self, tenant: str, rule_id: str, active: bool) -> bool:
        result = await self._rules.update_one(
            {"_id": f"{tenant}/{rule_id}"}, {"$set": {"active": active}}
        )
        return result.matched_count == 1

    # ------------------------------------------------------------------ conversions

    async def add_conversion(self, doc: Document, session: AsyncClientSession) -> bool:
        """Record an order's conversion once; False when the order was attributed before."""
        try:
            await self._conversions.insert_one(doc, session=session)
        except DuplicateKeyError:
            return False
        return True

    async def conversion_figures(self, tenant: str, campaign_id: str) -> list[Document]:
        pipeline = [
            {"$match": {"tenant": tenant, "campaign_id": campaign_id}},
            {"$group": {"_id": "$variant", "count": {"$sum": 1}, "gmv": {"$sum": "$amount"}}},
        ]
        return await (await self._conversions.aggregate(pipeline)).to_list()


def _campaign(doc: Document) -> Campaign:
    return Campaign.model_validate({k: v for k, v in doc.items() if k != "_id"})


def _rule(doc: Document) -> Rule:
    return Rule.model_validate({k: v for k, v in doc.items() if k != "_id"})

"""Tag rules, and the per-tenant leases that keep two replicas from sweeping one tenant."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.mongo import Document, Index
from services.tagging.domain.rules.ast import parse_rule, rule_to_json
from services.tagging.domain.tag_rules import RuleState, TagRule

TAG_RULES = "tag_rules"
SWEEP_LEASES = "tag_rule_sweep_leases"
INDEXES = [
    Index(TAG_RULES, [("tenant", 1), ("rule_id", 1)], unique=True, name="by_rule"),
    Index(TAG_RULES, [("state", 1), ("time_based", 1), ("tenant", 1)], name="time_based"),
]
Session = AsyncClientSession | None


def _id(tenant: str, rule_id: str) -> str:
    return f"{tenant}:{rule_id}"


def _doc(rule: TagRule) -> Document:
    doc = rule.model_dump(mode="python", exclude={"rule"})
    return {"_id": _id(rule.tenant, rule.rule_id), **doc, "rule": rule_to_json(rule.rule)}


def _rule(doc: Mapping[str, Any]) -> TagRule:
    fields = {k: v for k, v in doc.items() if k != "_id"}
    return TagRule.model_validate({**fields, "rule": parse_rule(doc["rule"])})


class TagRuleStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._rules = db[TAG_RULES]
        self._leases = db[SWEEP_LEASES]

    async def add(self, rule: TagRule) -> None:
        await self._rules.insert_one(_doc(rule))

    async def get(self, tenant: str, rule_id: str) -> TagRule | None:
        doc = await self._rules.find_one({"_id": _id(tenant, rule_id)})
        return _rule(doc) if doc else None

    async def replace(self, rule: TagRule, *, expected_version: int) -> bool:
        """Write `rule` unless someone changed it since `expected_version` was read."""
        query = {"_id": _id(rule.tenant, rule.rule_id), "version": expected_version}
        result = await self._rules.replace_one(query, _doc(rule))
        return result.matched_count == 1

    async def delete(self, tenant: str, rule_id: str) -> bool:
        result = await self._rules.delete_one({"_id": _id(tenant, rule_id)})
        return result.deleted_count == 1

    async def page(self, tenant: str, *, after: str | None, limit: int) -> list[TagRule]:
        query: Document = {"tenant": tenant}
        if after is not None:
            query["rule_id"] = {"$gt": after}
        cursor = self._rules.find(query).sort("rule_id", 1).limit(limit)
        return [_rule(doc) for doc in await cursor.to_list()]

    async def all(self, tenant: str, *, session: Session = None) -> list[TagRule]:
        cursor = self._rules.find({"tenant": tenant}, session=session).sort("rule_id", 1)
        return [_rule(doc) for doc in await cursor.to_list()]

    async def active(self, tenant: str, *, session: Session = None) -> list[TagRule]:
        query = {"tenant": tenant, "state": RuleState.ACTIVE.value}
        cursor = self._rules.find(query, session=session).sort("rule_id", 1)
        return [_rule(doc) for doc in await cursor.to_list()]

    async def tenants_to_sweep(self) -> list[str]:
        """Tenants with an active time-based rule, and tenants whose rules changed since
        their last sweep (a new rule must reach the customers it already holds for)."""
        query = {"state": RuleState.ACTIVE.value, "time_based": True}
        timed = await self._rules.distinct("tenant", query)
        requested = await self._leases.distinct("_id", {"requested": True})
        return sorted({*timed, *requested})

    async def request_sweep(self, tenant: str) -> None:
        await self._leases.update_one({"_id": tenant}, {"$set": {"requested": True}}, upsert=True)

    async def take_sweep_lease(
        self, tenant: str, owner: str, *, now: datetime, seconds: float, interval: float
    ) -> bool:
        """Hold the tenant's sweep lease for `seconds` if it is free (or ours) and a sweep is
        due: none in the last `interval` seconds, or one was requested."""
        due_after = now - timedelta(seconds=interval)
        query = {
            "_id": tenant,
            "$and": [
                {"$or": [{"until": {"$lt": now}}, {"until": None}, {"owner": owner}]},
                {"$or": [{"last_swept_at": {"$lt": due_after}}, {"requested": True}]},
            ],
        }
        update = {
            "$set": {"owner": owner, "until": now + timedelta(seconds=seconds), "requested": False}
        }
        try:
            result = await self._leases.update_one(query, update)
            if result.matched_count == 0:
                # No lease document yet: the first sweep of this tenant creates it.
                await self._leases.insert_one({"_id": tenant, **update["$set"]})
        except DuplicateKeyError:
            return False  # held by another replica, or not due
        return True

    async def renew_sweep_lease(
        self, tenant: str, owner: str, *, now: datetime, seconds: float
    ) -> None:
        until = now + timedelta(seconds=seconds)
        await self._leases.update_one({"_id": tenant, "owner": owner}, {"$set": {"until": until}})

    async def finish_sweep(self, tenant: str, owner: str, *, started_at: datetime) -> None:
        await self._leases.update_one(
            {"_id": tenant, "owner": owner},
            {"$set": {"until": started_at, "last_swept_at": started_at}},
        )

"""Drop rules, and the occasions a client named, so a retried check answers what the first
one did (a customer's earlier drops are their coupons of the on-site channel: holdings)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.coupon.domain.drops import DropRule
from services.coupon.store.coupons import key

DROP_RULES = "drop_rules"
DROP_OCCASIONS = "drop_occasions"
#: An occasion is a login or a page view: a client retries it within minutes, not days.
OCCASION_RETENTION = timedelta(days=2)
MAX_RULES = 500

INDEXES = [
    Index(DROP_RULES, [("tenant", 1), ("_id", -1)]),
    Index(
        DROP_OCCASIONS,
        [("created_at", 1)],
        expire_after_seconds=int(OCCASION_RETENTION.total_seconds()),
    ),
]


def _rule(doc: Document) -> DropRule:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "tenant")}
    return DropRule.model_validate({**fields, "id": doc["_id"]})


class DropStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.rules = db[DROP_RULES]
        self.occasions = db[DROP_OCCASIONS]

    # ------------------------------------------------------------------ rules

    async def add(self, tenant: str, rule: DropRule) -> None:
        doc = rule.model_dump(mode="python", exclude={"id"})
        await self.rules.insert_one({"_id": rule.id, "tenant": tenant, **doc})

    async def replace(self, tenant: str, rule: DropRule) -> bool:
        doc = rule.model_dump(mode="python", exclude={"id"})
        result = await self.rules.replace_one(
            {"_id": rule.id, "tenant": tenant}, {"tenant": tenant, **doc}
        )
        return result.matched_count == 1

    async def delete(self, tenant: str, rule_id: str) -> bool:
        result = await self.rules.delete_one({"_id": rule_id, "tenant": tenant})
        return result.deleted_count == 1

    async def get(self, tenant: str, rule_id: str) -> DropRule | None:
        doc = await self.rules.find_one({"_id": rule_id, "tenant": tenant})
        return _rule(doc) if doc else None

    async def page(self, tenant: str, page: PageRequest) -> tuple[list[DropRule], str | None]:
        query: dict[str, Any] = {"tenant": tenant}
        if page.after:
            query["_id"] = {"$lt": page.after_value("id")}
        docs = await self.rules.find(query).sort("_id", -1).limit(page.limit + 1).to_list()
        items = [_rule(d) for d in docs]
        return items[: page.limit], next_cursor([{"id": r.id} for r in items], page.limit, "id")

    async def live(self, tenant: str, now: datetime) -> list[DropRule]:
        """Enabled rules whose active window has not ended. Filtered here, not in the
        query: the embedded store scans the collection for a filter its index lacks."""
        docs = await self.rules.find({"tenant": tenant}).sort("_id", -1).to_list(MAX_RULES)
        rules = [_rule(d) for d in docs]
        return [r for r in rules if r.enabled and r.active_until > now]

    # -------------------------------------------------------------- occasions

    @staticmethod
    def _occasion_id(tenant: str, rule_id: str, customer_id: str, occasion: str) -> str:
        return key(tenant, rule_id, customer_id, "occasion", occasion)

    async def remembered(
        self, tenant: str, customer_id: str, occasion: str, rule_ids: list[str]
    ) -> dict[str, str]:
        """The drop references earlier checks of this occasion took, by rule."""
        ids = {self._occasion_id(tenant, r, customer_id, occasion): r for r in rule_ids}
        docs = await self.occasions.find({"_id": {"$in": list(ids)}}).to_list()
        return {ids[d["_id"]]: d["reference"] for d in docs}

    async def remember(
        self,
        tenant: str,
        rule_id: str,
        customer_id: str,
        occasion: str,
        reference: str,
        now: datetime,
    ) -> str:
        """Record the occasion's drop before issuing it; a concurrent check of the same
        occasion that recorded first wins, and its reference is answered."""
        occasion_id = self._occasion_id(tenant, rule_id, customer_id, occasion)
        try:
            await self.occasions.insert_one(
                {"_id": occasion_id, "tenant": tenant, "reference": reference, "created_at": now}
            )
        except DuplicateKeyError:
            doc = await self.occasions.find_one({"_id": occasion_id})
            return str(doc["reference"]) if doc else reference
        return reference

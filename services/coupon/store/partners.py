"""Partners as the coupon service knows them: quotas per batch, direct issues made by
reference, partner offers with their codes, offers given to customers, and each partner's
profile (webhook address, secret version, request rate).

Races are settled by keys and conditional decrements: a direct issue is counted by
inserting its reference key (the second insert of one reference fails), a quota or an
offer is taken from with `$inc` on what is left, filtered on enough being left. Always
`update_one` then a read, never `find_one_and_update`: the embedded store answers that in
time proportional to the collection's size."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.coupon.domain.partners import PartnerCoupon, PartnerOffer, Quota
from services.coupon.store.coupons import key

QUOTAS = "partner_quotas"
ISSUES = "partner_issues"
OFFERS = "partner_offers"
OFFER_CODES = "partner_offer_codes"
GIVES = "partner_gives"
PROFILES = "partner_profiles"

INDEXES = [
    Index(QUOTAS, [("tenant", 1), ("partner_id", 1)]),
    Index(OFFERS, [("tenant", 1), ("partner_id", 1), ("created_at", -1)]),
    Index(GIVES, [("tenant", 1), ("customer_id", 1), ("given_at", -1)]),
]


def quota_id(tenant: str, batch_id: str, partner_id: str) -> str:
    return f"{tenant}:{batch_id}:{partner_id}"


def _without_id(doc: Document, name: str = "id") -> dict[str, Any]:
    return {**{k: v for k, v in doc.items() if k != "_id"}, name: doc["_id"]}


class PartnerStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.quotas = db[QUOTAS]
        self.issues = db[ISSUES]
        self.offers = db[OFFERS]
        self.offer_codes = db[OFFER_CODES]
        self.gives = db[GIVES]
        self.profiles = db[PROFILES]

    # ------------------------------------------------------------------ quotas

    async def quota(
        self, tenant: str, batch_id: str, partner_id: str, session: AsyncClientSession | None = None
    ) -> Quota | None:
        doc = await self.quotas.find_one(
            {"_id": quota_id(tenant, batch_id, partner_id)}, session=session
        )
        return Quota.model_validate(doc) if doc else None

    async def quotas_of(self, tenant: str, partner_id: str) -> list[Quota]:
        docs = await self.quotas.find({"tenant": tenant, "partner_id": partner_id}).to_list(500)
        return [Quota.model_validate(d) for d in docs]

    async def allocate(self, quota: Quota, before: Quota | None) -> bool:
        """Write the allocation if the quota is still as read (`before`); False if it moved."""
        doc = {
            "_id": quota_id(quota.tenant, quota.batch_id, quota.partner_id),
            **quota.model_dump(),
        }
        if before is None:
            result = await self.quotas.update_one(
                {"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True
            )
            return result.upserted_id is not None
        result = await self.quotas.replace_one(
            {"_id": doc["_id"], "codes_left": before.codes_left, "issues_left": before.issues_left},
            doc,
        )
        return result.modified_count == 1

    async def consume(
        self,
        tenant: str,
        batch_id: str,
        partner_id: str,
        field: str,
        units: int,
        session: AsyncClientSession,
    ) -> Quota | None:
        """Take `units` from what is left of the quota (`codes_left` or `issues_left`);
        None when not that many are left."""
        _id = quota_id(tenant, batch_id, partner_id)
        result = await self.quotas.update_one(
            {"_id": _id, field: {"$gte": units}}, {"$inc": {field: -units}}, session=session
        )
        if result.modified_count != 1:
            return None
        doc = await self.quotas.find_one({"_id": _id}, session=session)
        return Quota.model_validate(doc)

    async def put_back(
        self, tenant: str, batch_id: str, partner_id: str, field: str, units: int,
        session: AsyncClientSession,
    ) -> None:  # fmt: skip
        await self.quotas.update_one(
            {"_id": quota_id(tenant, batch_id, partner_id)},
            {"$inc": {field: units}},
            session=session,
        )

    # ---------------------------------------------------------- direct issues

    @staticmethod
    def issue_id(tenant: str, batch_id: str, partner_id: str, reference: str) -> str:
        return key(tenant, batch_id, partner_id, "issue", reference)

    async def record_issue(self, doc: Document, session: AsyncClientSession) -> None:
        """DuplicateKeyError when the reference was counted before."""
        await self.issues.insert_one(doc, session=session)

    async def issue(
        self, issue_id: str, session: AsyncClientSession | None = None
    ) -> Document | None:
        return await self.issues.find_one({"_id": issue_id}, session=session)

    async def drop_issue(self, issue_id: str, session: AsyncClientSession) -> bool:
        result = await self.issues.delete_one({"_id": issue_id, "coupon_id": None}, session=session)
        return result.deleted_count == 1

    async def issue_made(self, issue_id: str, coupon_id: str) -> None:
        await self.issues.update_one({"_id": issue_id}, {"$set": {"coupon_id": coupon_id}})

    # ----------------------------------------------------------------- offers

    async def add_offer(
        self, offer: PartnerOffer, codes: list[str], session: AsyncClientSession
    ) -> None:
        await self.offers.insert_one(
            {"_id": offer.id, **offer.model_dump(exclude={"id"})}, session=session
        )
        if codes:
            docs = [{"_id": f"{offer.id}:{n}", "code": c} for n, c in enumerate(codes, 1)]
            await self.offer_codes.insert_many(docs, session=session)

    async def offer(
        self, tenant: str, offer_id: str, session: AsyncClientSession | None = None
    ) -> PartnerOffer | None:
        doc = await self.offers.find_one({"_id": offer_id, "tenant": tenant}, session=session)
        return PartnerOffer.model_validate(_without_id(doc)) if doc else None

    async def offers_of(self, tenant: str, partner_id: str | None) -> list[PartnerOffer]:
        query: dict[str, Any] = {"tenant": tenant}
        if partner_id is not None:
            query["partner_id"] = partner_id
        docs = await self.offers.find(query).sort("created_at", -1).to_list(500)
        return [PartnerOffer.model_validate(_without_id(d)) for d in docs]

    async def take_unit(
        self, tenant: str, offer_id: str, session: AsyncClientSession
    ) -> PartnerOffer | None:
        """One unit of the offer; None when none is left. The unit's number is
        `total - left` after the take."""
        result = await self.offers.update_one(
            {"_id": offer_id, "tenant": tenant, "left": {"$gte": 1}},
            {"$inc": {"left": -1}},
            session=session,
        )
        if result.modified_count != 1:
            return None
        return await self.offer(tenant, offer_id, session)

    async def offer_code(
        self, offer_id: str, number: int, session: AsyncClientSession
    ) -> str | None:
        doc = await self.offer_codes.find_one({"_id": f"{offer_id}:{number}"}, session=session)
        return str(doc["code"]) if doc else None

    # ------------------------------------------------------------------ gives

    @staticmethod
    def give_id(tenant: str, offer_id: str, customer_id: str) -> str:
        return f"pcp_{key(tenant, offer_id, customer_id)}"

    async def add_give(self, give: PartnerCoupon, session: AsyncClientSession) -> None:
        """DuplicateKeyError when the customer was given this offer before."""
        await self.gives.insert_one(
            {"_id": give.id, **give.model_dump(exclude={"id"})}, session=session
        )

    async def give(self, give_id: str) -> PartnerCoupon | None:
        doc = await self.gives.find_one({"_id": give_id})
        return PartnerCoupon.model_validate(_without_id(doc)) if doc else None

    async def given_to(self, tenant: str, customer_id: str) -> list[PartnerCoupon]:
        docs = await (
            self.gives.find({"tenant": tenant, "customer_id": customer_id})
            .sort("given_at", -1)
            .to_list(500)
        )
        return [PartnerCoupon.model_validate(_without_id(d)) for d in docs]

    # --------------------------------------------------------------- profiles

    async def profile(self, tenant: str, partner_id: str) -> Document:
        doc = await self.profiles.find_one({"_id": f"{tenant}:{partner_id}"})
        return doc or {}

    async def set_webhook(
        self, tenant: str, partner_id: str, url: str, rotate: bool, now: datetime
    ) -> Document:
        """Set the webhook address; a first address or `rotate` moves to a new secret
        version."""
        update: dict[str, Any] = {
            "$set": {"tenant": tenant, "partner_id": partner_id, "webhook_url": url,
                     "updated_at": now},
        }  # fmt: skip
        if rotate:
            update["$inc"] = {"secret_version": 1}
        else:
            update["$setOnInsert"] = {"secret_version": 1}
        await self.profiles.update_one({"_id": f"{tenant}:{partner_id}"}, update, upsert=True)
        return await self.profile(tenant, partner_id)

    async def set_rate(
        self, tenant: str, partner_id: str, per_second: int | None, now: datetime
    ) -> Document:
        await self.profiles.update_one(
            {"_id": f"{tenant}:{partner_id}"},
            {
                "$set": {
                    "tenant": tenant,
                    "partner_id": partner_id,
                    "requests_per_second": per_second,
                    "updated_at": now,
                },
                "$setOnInsert": {"secret_version": 1},
            },
            upsert=True,
        )
        return await self.profile(tenant, partner_id)

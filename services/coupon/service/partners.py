"""Partner exchange (异业合作) use cases.

- Staff allocate a partner a quota on a batch: codes it may take, direct issues it may make.
- The partner takes codes: the quota is decremented and the codes' digests written in one
  transaction (a decrement that would go below zero matches nothing: concurrent takes never
  exceed the quota); the plain codes are answered once.
- The partner issues our coupon to a customer it names by mobile (resolved by the customer
  service): the reference is counted against the quota once (its key is inserted with the
  decrement), then the claim desk issues with channel `partner:<id>` and reference
  `partner:<id>:<reference>`, idempotent like every grant. A refused issue (sold out,
  limit) hands the unit back.
- The partner registers its own offers; staff give one to a customer (one per customer per
  offer), and the partner is told by webhook, enqueued in the same transaction."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime

import httpx
from pymongo.errors import DuplicateKeyError

from servicekit.clock import utcnow
from servicekit.errors import Conflict, InvalidInput, NotFound
from servicekit.peers import Peer
from servicekit.runtime import Runtime
from servicekit.unit_of_work import Tx
from services.coupon.domain.partners import (
    PartnerCoupon,
    PartnerOffer,
    Quota,
    offer_refusal,
    reallocate,
)
from services.coupon.domain.rate_limits import Limit
from services.coupon.service.claims import ClaimDesk, Claimed, ClaimRefused, ClaimRequest
from services.coupon.service.codes import CodeDesk, mint, new_lot, partner_channel
from services.coupon.service.partner_webhooks import http_client, offer_given
from services.coupon.service.rate_limits import RateLimiter
from services.coupon.service.segments import CALLER
from services.coupon.settings import CouponSettings
from services.coupon.store.codes import CodeLot
from services.coupon.store.partner_webhooks import DeliveryStore
from services.coupon.store.partners import PartnerStore

CODES, ISSUES = "codes_left", "issues_left"


class QuotaExhausted(Conflict):
    def __init__(self, what: str, left: int) -> None:
        super().__init__(f"the partner's quota of {what} has {left} left", code="quota_exhausted")


class NoQuota(NotFound):
    def __init__(self, batch_id: str) -> None:
        super().__init__(f"no partner quota on batch {batch_id}", code="quota_not_found")


class CustomerDirectory:
    """Our customer named by mobile, asked of the customer service (its blind index)."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.customers = Peer(http, base_url, name="customer", caller=CALLER)

    async def by_mobile(self, tenant: str, mobile: str) -> str | None:
        response = await self.customers.get("/customers", tenant, {"mobile": mobile, "limit": 1})
        if response.status_code == 422:
            raise InvalidInput("not a valid mobile number", field="mobile")
        if response.status_code != 200:
            raise self.customers.unavailable(f"answered {response.status_code}")
        items = response.json()["items"]
        return str(items[0]["id"]) if items else None


@dataclass
class TakenCodes:
    lot: CodeLot
    codes: list[str]
    quota: Quota


class PartnerDesk:
    def __init__(
        self,
        runtime: Runtime,
        settings: CouponSettings,
        desk: ClaimDesk,
        limiter: RateLimiter,
        codes: CodeDesk,
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.desk = desk
        self.limiter = limiter
        self.codes = codes
        self.store = PartnerStore(runtime.db)
        self.directory = CustomerDirectory(http_client(runtime), settings.customer_base_url)

    async def admit(self, tenant: str, partner_id: str) -> None:
        """The partner's request rate: its own limit if staff set one, else the default."""
        profile = await self.store.profile(tenant, partner_id)
        per_second = profile.get("requests_per_second") or self.settings.partner_requests_per_second
        await self.limiter.check(tenant, [Limit("partner", partner_id, per_second, 1)])

    # ------------------------------------------------------------------ quotas

    async def allocate(
        self, tenant: str, batch_id: str, partner_id: str, codes: int, issues: int, *, by: str
    ) -> Quota:
        await self.desk.batch(tenant, batch_id)  # 404 for an unknown batch
        for _ in range(5):
            before = await self.store.quota(tenant, batch_id, partner_id)
            change = reallocate(before, codes, issues)
            if change is None:
                raise Conflict(
                    "a total is below what the partner already used", code="quota_below_used"
                )
            quota = Quota(
                tenant=tenant, batch_id=batch_id, partner_id=partner_id,
                codes=codes, codes_left=change.codes_left,
                direct_issues=issues, issues_left=change.issues_left,
                updated_by=by, updated_at=utcnow(),
            )  # fmt: skip
            if await self.store.allocate(quota, before):
                return quota
        raise Conflict("the quota is changing; retry", code="concurrent_update")

    async def quota(self, tenant: str, batch_id: str, partner_id: str) -> Quota:
        found = await self.store.quota(tenant, batch_id, partner_id)
        if found is None:
            raise NoQuota(batch_id)
        return found

    # ------------------------------------------------------------------- codes

    async def take_codes(
        self, tenant: str, batch_id: str, partner_id: str, count: int
    ) -> TakenCodes:
        await self.quota(tenant, batch_id, partner_id)
        lot = new_lot(tenant, batch_id, count, by=partner_id, partner_id=partner_id)
        plain, digests = await asyncio.to_thread(mint, self.codes.key, tenant, count)

        async def work(tx: Tx) -> Quota:
            quota = await self.store.consume(tenant, batch_id, partner_id, CODES, count, tx.session)
            if quota is None:
                left = await self.store.quota(tenant, batch_id, partner_id, tx.session)
                raise QuotaExhausted("codes", left.codes_left if left else 0)
            await self.codes.store.add_lot(lot, tx.session)
            await self.codes.store.add_codes(lot, digests, 1, tx.session)
            return quota

        quota = await self.runtime.uow.run(work)
        return TakenCodes(lot, plain, quota)

    # ----------------------------------------------------------- direct issues

    async def issue_by_mobile(
        self, tenant: str, batch_id: str, partner_id: str, mobile: str, reference: str
    ) -> Claimed:
        batch = await self.desk.batch(tenant, batch_id)
        await self.quota(tenant, batch_id, partner_id)
        customer_id = await self.directory.by_mobile(tenant, mobile)
        if customer_id is None:
            raise NotFound("no customer has this mobile", code="customer_not_found")
        issue_id = self.store.issue_id(tenant, batch_id, partner_id, reference)
        await self._count_issue(tenant, batch_id, partner_id, issue_id, customer_id)
        channel = partner_channel(partner_id)
        request = ClaimRequest(customer_id, channel, f"{channel}:{reference}")
        try:
            claimed = await self.desk.issue(tenant, batch, request, check_window=False)
        except ClaimRefused:
            await self._uncount_issue(tenant, batch_id, partner_id, issue_id)
            raise
        await self.store.issue_made(issue_id, claimed.coupon.id)
        return claimed

    async def _count_issue(
        self, tenant: str, batch_id: str, partner_id: str, issue_id: str, customer_id: str
    ) -> None:
        """Count the reference against the quota, once: its key and the decrement commit
        together; a reference counted before is not counted again."""

        async def work(tx: Tx) -> None:
            await self.store.record_issue(
                {"_id": issue_id, "tenant": tenant, "customer_id": customer_id,
                 "coupon_id": None, "at": utcnow()},
                tx.session,
            )  # fmt: skip
            if await self.store.consume(tenant, batch_id, partner_id, ISSUES, 1, tx.session):
                return
            raise QuotaExhausted("direct issues", 0)

        try:
            await self.runtime.uow.run(work)
        except DuplicateKeyError:
            before = await self.store.issue(issue_id)
            if before is not None and before["customer_id"] != customer_id:
                raise Conflict(
                    "this reference was used for another customer", code="reference_reused"
                ) from None

    async def _uncount_issue(
        self, tenant: str, batch_id: str, partner_id: str, issue_id: str
    ) -> None:
        async def work(tx: Tx) -> None:
            if await self.store.drop_issue(issue_id, tx.session):
                await self.store.put_back(tenant, batch_id, partner_id, ISSUES, 1, tx.session)

        await self.runtime.uow.run(work)

    # ------------------------------------------------------------------ offers

    async def add_offer(
        self,
        tenant: str,
        partner_id: str,
        *,
        title: str,
        value: int,
        valid_from: datetime,
        valid_until: datetime,
        codes: list[str],
        count: int,
    ) -> PartnerOffer:
        offer = PartnerOffer(
            id=f"pof_{secrets.token_hex(8)}", tenant=tenant, partner_id=partner_id,
            title=title, value=value, valid_from=valid_from, valid_until=valid_until,
            total=count, left=count, has_codes=bool(codes), created_at=utcnow(),
        )  # fmt: skip

        async def work(tx: Tx) -> None:
            await self.store.add_offer(offer, codes, tx.session)

        await self.runtime.uow.run(work)
        return offer

    async def give(
        self, tenant: str, offer_id: str, customer_id: str, *, by: str
    ) -> tuple[PartnerCoupon, bool]:
        """One unit of the offer to the customer (and the partner told by webhook); the
        same customer again gets the same one back (False: not new)."""
        give_id = self.store.give_id(tenant, offer_id, customer_id)
        if (before := await self.store.give(give_id)) is not None:
            return before, False

        async def work(tx: Tx) -> PartnerCoupon:
            return await self._give_in(tx, tenant, offer_id, customer_id, give_id, by)

        try:
            return await self.runtime.uow.run(work), True
        except DuplicateKeyError:
            again = await self.store.give(give_id)
            assert again is not None
            return again, False

    async def _give_in(
        self, tx: Tx, tenant: str, offer_id: str, customer_id: str, give_id: str, by: str
    ) -> PartnerCoupon:
        now = utcnow()
        offer = await self.store.offer(tenant, offer_id, tx.session)
        if offer is None:
            raise NotFound(f"no partner offer {offer_id}", code="offer_not_found")
        if refusal := offer_refusal(offer, now):
            raise Conflict(f"the offer cannot be given: {refusal}", code=str(refusal))
        taken = await self.store.take_unit(tenant, offer_id, tx.session)
        if taken is None:
            raise Conflict("the offer cannot be given: offer_exhausted", code="offer_exhausted")
        number = taken.total - taken.left
        code = (
            await self.store.offer_code(offer_id, number, tx.session) if offer.has_codes else None
        )
        give = PartnerCoupon(
            id=give_id, tenant=tenant, offer_id=offer_id, partner_id=offer.partner_id,
            customer_id=customer_id, number=number, code=code, title=offer.title,
            value=offer.value, valid_from=offer.valid_from, valid_until=offer.valid_until,
            given_by=by, given_at=now,
        )  # fmt: skip
        await self.store.add_give(give, tx.session)
        await DeliveryStore(tx.db).enqueue(offer_given(give), tx.session)
        return give

"""The claim centre (领券中心) for one customer: what they can claim now, and why not for the
open batches they cannot.

Cheap by design, since every visit to the page asks: the tenant's open batches are kept in
memory for `claim_centre_cache_seconds` (concurrent visitors share one read when it is due),
and a visit then costs one read of the customer's coupons of those batches, plus one read of
their paid-order count when a listed batch is for new customers only. Stock is judged as a
claim at this replica would judge it (sold out in memory, or nothing left unleased and no
lease held here), so a listing may say claimable for up to the cache period after a batch
sold out elsewhere; the claim itself is always decided on the hot path."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from servicekit.caching import TenantCache
from servicekit.clock import utcnow
from services.coupon.domain import claim_centre as rules
from services.coupon.domain.batches import Audience
from services.coupon.domain.claim_centre import Listing
from services.coupon.service.claims import ClaimDesk
from services.coupon.service.holdings import Holdings
from services.coupon.store.batches import Batch
from services.coupon.store.claim_centre import ClaimCentreStore
from services.coupon.store.holdings import Held


class ClaimCentreView(BaseModel):
    customer_id: str
    #: Claimable first (ending soonest first), then the greyed-out ones with their reason.
    batches: list[Listing]


class ClaimCentre:
    def __init__(
        self, desk: ClaimDesk, store: ClaimCentreStore, holdings: Holdings, ttl: float
    ) -> None:
        self.desk = desk
        self.store = store
        self.holdings = holdings
        self.batches = TenantCache(self._load, ttl)

    async def open_batches(self, tenant: str) -> list[Batch]:
        return await self.batches.get(tenant)

    async def _load(self, tenant: str) -> list[Batch]:
        return await self.store.open_batches(tenant, utcnow())

    async def for_customer(self, tenant: str, customer_id: str) -> ClaimCentreView:
        now = utcnow()
        batches = await self.open_batches(tenant)
        paid = 0
        if any(b.spec.audience != Audience.ANYONE for b in batches):
            paid = (await self.desk.customers.paid_orders(tenant, [customer_id]))[customer_id]
        shown = [b for b in batches if rules.shown(b.spec, paid, now)]
        held = _claimed_at(await self.holdings.of(tenant, customer_id), shown)
        zone = (await self.desk.policies.of(tenant)).zone
        listings = [
            rules.listing(
                b.id, b.campaign_id, b.spec, held[b.id],
                sold_out=self._sold_out(tenant, b), now=now, zone=zone,
            )
            for b in shown
        ]  # fmt: skip
        return ClaimCentreView(customer_id=customer_id, batches=rules.ordered(listings))

    def _sold_out(self, tenant: str, batch: Batch) -> bool:
        if self.desk.sold_out(tenant, batch.id):
            return True
        return batch.unleased == 0 and self.desk.issuer(tenant, batch.id).lease == 0


def _claimed_at(held: list[Held], batches: list[Batch]) -> dict[str, list[datetime]]:
    """When the customer claimed the coupons they hold of each batch (return coupons are
    issued for an order, outside the per-customer slots)."""
    found: dict[str, list[datetime]] = {b.id: [] for b in batches}
    for h in held:
        if h.batch_id in found and h.channel != rules.RETURN_CHANNEL:
            found[h.batch_id].append(h.claimed_at)
    return found

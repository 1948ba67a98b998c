"""On-site drops (站内投放, 天降红包): drop rules kept by ops, and the check a client makes
when a customer logs in or opens a page.

A check costs nothing when no live rule matches (the tenant's live rules are kept in memory
for `drop_rules_cache_seconds`; a change made at this replica is seen at once). Otherwise it
counts in the customer's and the channel's claim rate limits (429 beyond), reads the
customer's earlier drops (one read shared by the checks arriving together) and their
paid-order count when a rule's audience needs it, draws each matching rule with
SystemRandom, and issues a win through the claim desk with channel `onsite_drop` and a
reference naming (rule, customer, ordinal): concurrent checks never exceed a rule's caps,
and a check repeated with the same `occasion` answers the same drop instead of drawing again."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, tzinfo

from servicekit.caching import TenantCache
from servicekit.clock import utcnow
from servicekit.errors import InvalidInput, NotFound
from servicekit.pagination import PageRequest
from services.coupon.domain import drops as rules
from services.coupon.domain.coupons import Coupon
from services.coupon.domain.drops import DropRule, DropRuleDraft, Trigger
from services.coupon.domain.rate_limits import Limit
from services.coupon.service.claims import ClaimDesk, ClaimRefused, ClaimRequest
from services.coupon.service.holdings import Holdings
from services.coupon.service.rate_limits import RateLimiter
from services.coupon.store.drops import DropStore
from services.coupon.store.holdings import Held

log = logging.getLogger("services.coupon.drops")


@dataclass(frozen=True)
class Check:
    customer_id: str
    trigger: Trigger
    page: str | None = None
    #: The client's id of this login or page view: a retry with it answers the same.
    occasion: str | None = None


@dataclass(frozen=True)
class Dropped:
    rule_id: str
    coupon: Coupon
    #: False when the check repeats an earlier one's drop (a retried occasion, or a
    #: concurrent check that took the same ordinal).
    new: bool


class Drops:
    def __init__(
        self,
        desk: ClaimDesk,
        store: DropStore,
        holdings: Holdings,
        limiter: RateLimiter,
        ttl: float,
    ) -> None:
        self.desk = desk
        self.store = store
        self.holdings = holdings
        self.limiter = limiter
        self.rng = random.SystemRandom()
        self.live_rules = TenantCache(self._load, ttl)

    # ------------------------------------------------------------------ rules

    async def create(self, tenant: str, draft: DropRuleDraft, actor_id: str) -> DropRule:
        await self._batch_exists(tenant, draft.batch_id)
        now = utcnow()
        rule = DropRule(
            **draft.model_dump(),
            id=f"drp_{uuid.uuid4().hex[:16]}",
            created_by=actor_id,
            created_at=now,
            updated_by=actor_id,
            updated_at=now,
        )
        await self.store.add(tenant, rule)
        self.live_rules.forget(tenant)
        return rule

    async def replace(
        self, tenant: str, rule_id: str, draft: DropRuleDraft, actor_id: str
    ) -> DropRule:
        current = await self.get(tenant, rule_id)
        await self._batch_exists(tenant, draft.batch_id)
        rule = DropRule(
            **draft.model_dump(),
            id=rule_id,
            created_by=current.created_by,
            created_at=current.created_at,
            updated_by=actor_id,
            updated_at=utcnow(),
        )
        if not await self.store.replace(tenant, rule):
            raise _missing(rule_id)
        self.live_rules.forget(tenant)
        return rule

    async def delete(self, tenant: str, rule_id: str) -> None:
        if not await self.store.delete(tenant, rule_id):
            raise _missing(rule_id)
        self.live_rules.forget(tenant)

    async def get(self, tenant: str, rule_id: str) -> DropRule:
        rule = await self.store.get(tenant, rule_id)
        if rule is None:
            raise _missing(rule_id)
        return rule

    async def page(self, tenant: str, page: PageRequest) -> tuple[list[DropRule], str | None]:
        return await self.store.page(tenant, page)

    async def _batch_exists(self, tenant: str, batch_id: str) -> None:
        if await self.desk.batches.get(tenant, batch_id) is None:
            raise InvalidInput(f"no batch {batch_id}", field="batch_id", code="batch_not_found")

    # ------------------------------------------------------------------ check

    async def check(self, tenant: str, check: Check) -> list[Dropped]:
        """What drops for the customer on this login or page open (often nothing)."""
        now = utcnow()
        live = await self.live_rules.get(tenant)
        matching = [r for r in live if rules.matches(r, check.trigger, check.page, now)]
        if not matching:
            return []
        await self.limiter.check(tenant, self._limits(check.customer_id))
        if rules.needs_order_history(matching):
            paid = await self.desk.customers.paid_orders(tenant, [check.customer_id])
            matching = [r for r in matching if rules.audience_fits(r, paid[check.customer_id])]
        ids = [r.id for r in matching]
        dropped_at = _earlier_drops(await self.holdings.of(tenant, check.customer_id))
        earlier: dict[str, str] = {}
        if check.occasion is not None:
            earlier = await self.store.remembered(tenant, check.customer_id, check.occasion, ids)
        zone = (await self.desk.policies.of(tenant)).zone
        tries = []
        for rule in matching:
            ref = earlier.get(rule.id) or await self._draw(
                tenant, rule, check, dropped_at.get(rule.id, []), now, zone
            )
            if ref is not None:
                tries.append(self._drop(tenant, rule, check.customer_id, ref))
        return [d for d in await asyncio.gather(*tries) if d is not None]

    async def _draw(
        self,
        tenant: str,
        rule: DropRule,
        check: Check,
        dropped_at: list[datetime],
        now: datetime,
        zone: tzinfo,
    ) -> str | None:
        """The reference of a winning draw within the caps (recorded for the occasion
        first, so a retry of it answers the same), or None."""
        ordinal = rules.next_ordinal(rule, dropped_at, now, zone)
        if ordinal is None or not rules.draws(rule, self.rng):
            return None
        ref = rules.reference(rule.id, check.customer_id, ordinal)
        if check.occasion is None:
            return ref
        return await self.store.remember(
            tenant, rule.id, check.customer_id, check.occasion, ref, now
        )

    def _limits(self, customer_id: str) -> list[Limit]:
        """A check that may draw counts as a claim attempt of the customer's and of the
        channel's (429 beyond), so refreshing a page in a loop buys no extra draws' load."""
        settings = self.desk.settings
        return [
            Limit("channel", rules.CHANNEL, settings.channel_claims_per_second, 1),
            Limit("customer", customer_id, settings.customer_claims_per_minute, 60),
        ]

    async def _drop(
        self, tenant: str, rule: DropRule, customer_id: str, reference: str
    ) -> Dropped | None:
        """Issue the drop as a grant: stock and per-customer limits apply, the claim window
        does not (the rule's active window says when), so a batch meant only for drops has
        its claim window over and customers cannot claim it themselves."""
        try:
            batch = await self.desk.batch(tenant, rule.batch_id)
            request = ClaimRequest(customer_id, rules.CHANNEL, reference)
            claimed = await self.desk.issue(tenant, batch, request, check_window=False)
        except (ClaimRefused, NotFound) as refused:
            log.info(
                "drop not issued",
                extra={"rule_id": rule.id, "batch_id": rule.batch_id, "code": refused.code},
            )
            return None
        return Dropped(rule.id, claimed.coupon, claimed.created)

    async def _load(self, tenant: str) -> list[DropRule]:
        return await self.store.live(tenant, utcnow())


def _earlier_drops(held: list[Held]) -> dict[str, list[datetime]]:
    """When each rule dropped a coupon the customer holds, by rule."""
    found: dict[str, list[datetime]] = defaultdict(list)
    for h in held:
        rule_id = rules.rule_of(h.reference or "") if h.channel == rules.CHANNEL else None
        if rule_id is not None:
            found[rule_id].append(h.claimed_at)
    return found


def _missing(rule_id: str) -> NotFound:
    return NotFound(f"no drop rule {rule_id}", code="drop_rule_not_found")

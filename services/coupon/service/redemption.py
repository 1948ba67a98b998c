"""Redemption (核销) at checkout: quote, lock, confirm, release, refund, revoke.

A coupon can never be used twice: every step is one update whose filter names the state
(and order) it expects, and a unique index lets one order hold at most one coupon. Each
step is idempotent: repeating it finds the coupon already where the step leaves it and
answers the same. Using a coupon charges its discount to the campaign's budget in the same
transaction (reserved → consumed); a refund that gives the coupon back reverses that."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from contracts.coupon import CouponRedeemed, CouponRestored
from servicekit.clock import utcnow
from servicekit.errors import Conflict, DomainError, NotFound
from servicekit.unit_of_work import Tx, UnitOfWork
from services.coupon.domain import checkout
from services.coupon.domain.batches import DiscountKind, ScopeKind
from services.coupon.domain.budgets import Movement
from services.coupon.domain.campaigns import Campaign, CampaignState
from services.coupon.domain.checkout import NotApplicable, Offer, OrderDraft
from services.coupon.domain.coupons import Coupon, CouponState
from services.coupon.domain.policy import TenantPolicy
from services.coupon.domain.refunds import (
    RefundLine,
    given_back,
    split_discount,
    wholly_refunded,
)
from services.coupon.service.batching import Batcher
from services.coupon.service.claims import claimed_event, new_coupon
from services.coupon.service.holds import Holding
from services.coupon.service.policies import PolicyBook
from services.coupon.store.batches import Batch, BatchStore
from services.coupon.store.budgets import BudgetStore
from services.coupon.store.campaigns import CampaignStore
from services.coupon.store.coupons import CouponStore, coupon_doc
from services.coupon.store.customers import CustomerOrdersStore
from services.coupon.store.races import is_duplicate_key

T = TypeVar("T")
AVAILABLE, LOCKED, USED = (
    str(s) for s in (CouponState.AVAILABLE, CouponState.LOCKED, CouponState.USED)
)


class Quote(BaseModel):
    order_id: str
    #: Applicable coupons, best first.
    applicable: list[Offer]
    not_applicable: list[Offer]


class RefundAnswer(BaseModel):
    coupon: Coupon | None
    #: Whether the coupon went back to the wallet; `reason` says why not.
    restored: bool
    reason: str | None = None
    #: What this refund gave back of the subsidy charged for the coupon.
    given_back: int = 0


@dataclass(frozen=True)
class Refund:
    """A refund of a paid order: the refunded lines, or None for the whole order; the
    refund's id makes a partial refund count once."""

    refund_id: str | None = None
    lines: list[RefundLine] | None = None


Answer = Coupon | None | DomainError


class Turns:
    """Confirms and refunds charge the campaign's and the budget's documents: concurrent
    transactions on them conflict and retry, each retry making the next conflict likelier
    (160 concurrent confirms took 45 s). This replica's charges of one tenant take turns
    instead, and the confirms that arrive together are settled in one round (one
    transaction, one update per budget and per campaign); replicas still settle among
    themselves by conflict and retry."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        #: Each tenant's confirm rounds.
        self.rounds: dict[str, Batcher[str, Answer]] = {}

    def of(self, tenant: str) -> asyncio.Lock:
        return self._locks[tenant]

    async def stop(self) -> None:
        for batcher in self.rounds.values():
            await batcher.stop()


@dataclass
class Charges:
    """The coupons a round of confirms used, charged together when the round settles."""

    uses: list[tuple[Campaign, Coupon, int]] = field(default_factory=list)
    campaigns: dict[str, Campaign] = field(default_factory=dict)


@dataclass
class Checkout:
    #: None for an event handler, which brings its own transaction.
    uow: UnitOfWork | None
    coupons: CouponStore
    batches: BatchStore
    budgets: BudgetStore
    campaigns: CampaignStore
    customers: CustomerOrdersStore
    #: Tenants' policies: usable hours in the tenant's zone, margin rules at checkout.
    policies: PolicyBook
    lock_seconds: int
    rng: random.Random
    #: Ended campaigns' holds: a coupon's use or return moves its hold with the reservation.
    holding: Holding
    #: This replica's turns at a tenant's budgets and campaigns (see `Turns`).
    turns: Turns = field(default_factory=lambda: Turns())


class RedemptionService:
    def __init__(self, parts: Checkout) -> None:
        self.p = parts

    async def _run(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        assert self.p.uow is not None, "built without a unit of work: use the *_in steps"
        return await self.p.uow.run(work)

    # ----------------------------------------------------------------------- quote

    async def quote(self, tenant: str, customer_id: str, order: OrderDraft) -> Quote:
        now = utcnow()
        coupons = await self.p.coupons.usable(tenant, customer_id, now)
        batches = await self.p.batches.many(tenant, sorted({c.batch_id for c in coupons}))
        paid = (await self.p.customers.paid_orders(tenant, [customer_id]))[customer_id]
        policy = await self.p.policies.of(tenant)
        offers = [self._offer(batches[c.batch_id], c, order, paid, now, policy) for c in coupons]
        applicable, others = checkout.best_first(offers)
        return Quote(order_id=order.order_id, applicable=applicable, not_applicable=others)

    def _offer(
        self,
        batch: Batch,
        coupon: Coupon,
        order: OrderDraft,
        paid: int,
        now: datetime,
        policy: TenantPolicy,
    ) -> Offer:
        return checkout.offer(
            batch.spec,
            coupon,
            order,
            paid_orders=paid,
            now=now,
            zone=policy.zone,
            policy=policy.margin,
            locked_to=order.order_id,
        )

    # ------------------------------------------------------------------------ lock

    async def lock(
        self, tenant: str, customer_id: str, coupon_id: str, order: OrderDraft
    ) -> Coupon:
        """Hold the coupon for the unpaid order, with the discount it gives it."""
        policy = await self.p.policies.of(tenant)

        async def work(tx: Tx) -> Coupon:
            now = utcnow()
            coupon = await self._owned(tx, tenant, customer_id, coupon_id)
            if (
                coupon.state == CouponState.LOCKED
                and coupon.lock
                and coupon.lock.order_id == order.order_id
            ) and coupon.lock.expires_at > now:
                return coupon  # the same lock again
            batch = await self.p.batches.get(tenant, coupon.batch_id, tx.session)
            assert batch is not None
            paid = (await self.p.customers.paid_orders(tenant, [customer_id], tx.session))[
                customer_id
            ]
            offer = self._offer(batch, coupon, order, paid, now, policy)
            if offer.reason == NotApplicable.NOT_AVAILABLE:
                raise Conflict("the coupon is not available", code="coupon_not_available")
            if offer.reason is not None:
                raise Conflict(
                    f"the coupon does not apply to this order: {offer.reason}",
                    code="coupon_not_applicable",
                    reason=str(offer.reason),
                )
            expires = now + timedelta(seconds=self.p.lock_seconds)
            eligible = (
                []
                if batch.spec.scope.kind == ScopeKind.SHIPPING
                else (checkout.eligible_lines(batch.spec, order))
            )
            shares = split_discount(offer.discount, order, eligible)
            lock = {
                "order_id": order.order_id,
                "discount": offer.discount,
                "expires_at": expires,
                "shares": {i: s.model_dump() for i, s in shares.items()},
            }
            locked = await self.p.coupons.change(
                tenant,
                coupon_id,
                {
                    "$or": [
                        {"state": AVAILABLE},
                        {"state": LOCKED, "lock.expires_at": {"$lte": now}},
                    ]
                },
                {"$set": {"state": LOCKED, "lock": lock}},
                tx.session,
            )
            if locked is None:
                raise Conflict("the coupon is not available", code="coupon_not_available")
            await self._link(tx, tenant, order.order_id, locked.id, expires, now)
            return locked

        try:
            return await self._run(work)
        except DuplicateKeyError as exc:
            if not is_duplicate_key(exc):
                raise
            raise Conflict(
                "the order already holds a coupon: one coupon per order", code="order_has_coupon"
            ) from None

    async def _link(
        self, tx: Tx, tenant: str, order_id: str, coupon_id: str, expires: datetime, now: datetime
    ) -> None:
        """The order names this coupon, unless it still holds (or used) another one."""
        link = await self.p.coupons.order_link(tenant, order_id, tx.session)
        if link is None:
            await self.p.coupons.link_order(tenant, order_id, coupon_id, expires, tx.session)
            return
        if link["coupon_id"] != coupon_id:
            other = await self.p.coupons.get(tenant, link["coupon_id"], tx.session)
            if other is not None and _holds(other, order_id, now):
                raise Conflict(
                    "the order already holds a coupon: one coupon per order",
                    code="order_has_coupon",
                )
        await self.p.coupons.relink_order(tenant, order_id, coupon_id, expires, tx.session)

    async def _owned(self, tx: Tx, tenant: str, customer_id: str, coupon_id: str) -> Coupon:
        coupon = await self.p.coupons.get(tenant, coupon_id, tx.session)
        if coupon is None or coupon.customer_id != customer_id:
            raise NotFound(f"the customer holds no coupon {coupon_id}", code="coupon_not_found")
        return coupon

    # --------------------------------------------------------------------- confirm

    async def confirm(self, tenant: str, order_id: str) -> Coupon:
        """The order is paid: its coupon is used and its discount charged to the budget.
        Confirms arriving together are settled in one round (`Turns`)."""
        rounds = self.p.turns.rounds
        if tenant not in rounds:
            rounds[tenant] = Batcher(
                lambda ids: self._confirm_round(tenant, ids), max_items=200, name="confirms"
            )
        answer = await rounds[tenant].submit(order_id)
        if isinstance(answer, DomainError):
            raise answer
        if answer is None:
            raise NotFound(f"no coupon is locked to order {order_id}", code="no_coupon_for_order")
        return answer

    async def _confirm_round(self, tenant: str, order_ids: list[str]) -> list[Answer]:
        """One transaction for the round; an order no longer locked is that order's answer
        alone. Anything else that fails the round has each order confirmed on its own."""

        async def work(tx: Tx) -> list[Answer]:
            charges, answers = Charges(), list[Answer]()
            for order_id in order_ids:
                try:
                    answers.append(await self.confirm_in(tx, tenant, order_id, charges))
                except Conflict as exc:
                    if exc.code != "coupon_not_locked":  # raised before it wrote anything
                        raise
                    answers.append(exc)
            await self._settle(tx, tenant, charges)
            return answers

        async with self.p.turns.of(tenant):
            try:
                return await self._run(work)
            except Exception:
                if len(order_ids) == 1:
                    raise
            return [await self._confirm_alone(tenant, order_id) for order_id in order_ids]

    async def _confirm_alone(self, tenant: str, order_id: str) -> Answer:
        try:
            return await self._run(lambda tx: self.confirm_in(tx, tenant, order_id))
        except DomainError as exc:
            return exc

    async def _settle(self, tx: Tx, tenant: str, charges: Charges) -> None:
        """Per budget one guarded update and the ledger entries in one insert; per campaign
        one update."""
        by_budget: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
        by_campaign: dict[str, int] = defaultdict(int)
        for campaign, coupon, amount in charges.uses:
            by_budget[campaign.budget_id].append((campaign.id, coupon.id, amount))
            by_campaign[campaign.id] += amount
        for budget_id, uses in by_budget.items():
            if await self.p.budgets.consume_many(tenant, budget_id, uses, tx.session) is None:
                raise Conflict(
                    "the campaign's reservation does not cover this coupon", code="budget_exceeded"
                )
        for campaign_id, amount in by_campaign.items():
            draw = DRAWS[Movement.CONSUME](amount)
            await self.p.campaigns.draw(tenant, campaign_id, draw, tx.session)

    async def confirm_in(
        self, tx: Tx, tenant: str, order_id: str, charges: Charges | None = None
    ) -> Coupon | None:
        """Use the order's coupon in `tx`; its charge is made now, or added to `charges`
        for the round to settle."""
        coupon = await self.p.coupons.for_order(tenant, order_id, tx.session)
        if coupon is None:
            return None
        if coupon.state == CouponState.USED and coupon.order_id == order_id:
            return coupon  # confirmed before
        if coupon.lock is None or coupon.lock.order_id != order_id:
            return None
        now = utcnow()
        discount = coupon.lock.discount
        used = await self.p.coupons.change(
            tenant,
            coupon.id,
            # Locked for it, or the lock lapsed and nobody took the coupon since.
            {"state": {"$in": [LOCKED, AVAILABLE]}, "lock.order_id": order_id},
            {"$set": {"state": USED, "order_id": order_id, "discount": discount, "used_at": now}},
            tx.session,
        )
        if used is None:
            raise Conflict("the coupon is no longer held for this order", code="coupon_not_locked")
        await self.p.coupons.relink_order(tenant, order_id, used.id, None, tx.session)
        if charges is None:
            await self._charge(tx, tenant, used, Movement.CONSUME, discount, held=True)
        else:
            await self._charge_later(tx, tenant, used, discount, charges)
        await tx.emit(
            CouponRedeemed(
                coupon_id=used.id,
                batch_id=used.batch_id,
                campaign_id=used.campaign_id,
                customer_id=used.customer_id,
                order_id=order_id,
                discount=discount,
                redeemed_at=now,
            ),
            tenant=tenant,
        )
        await self._return_coupon(tx, tenant, used, now)
        return used

    async def _charge(
        self,
        tx: Tx,
        tenant: str,
        coupon: Coupon,
        movement: Movement,
        amount: int,
        note: str | None = None,
        *,
        held: bool = False,
    ) -> None:
        """Move `amount` between the campaign's reservation and what it consumed (CONSUME,
        RESTORE), or from its reservation back to the budget (RELEASE). `held`: the amount
        is (or becomes) the coupon's own reservation, which an ended campaign holds per
        expiry bucket."""
        if amount <= 0:
            return
        campaign = await self.p.campaigns.get(tenant, coupon.campaign_id, tx.session)
        assert campaign is not None
        if held and campaign.state == CampaignState.ENDED:
            await self._move_hold(tx, tenant, campaign, coupon, movement, amount)
        moved = await self.p.budgets.move(
            tenant,
            campaign.budget_id,
            movement,
            amount,
            tx.session,
            campaign_id=campaign.id,
            coupon_id=coupon.id,
            note=note,
        )
        if moved is None:  # the reservation covers every coupon's most: a broken invariant
            raise Conflict(
                "the campaign's reservation does not cover this coupon", code="budget_exceeded"
            )
        await self.p.campaigns.draw(tenant, campaign.id, DRAWS[movement](amount), tx.session)

    async def _charge_later(
        self, tx: Tx, tenant: str, used: Coupon, amount: int, charges: Charges
    ) -> None:
        if amount <= 0:
            return
        campaign = charges.campaigns.get(used.campaign_id)
        if campaign is None:
            campaign = await self.p.campaigns.get(tenant, used.campaign_id, tx.session)
            assert campaign is not None
            charges.campaigns[campaign.id] = campaign
        if campaign.state == CampaignState.ENDED:
            await self._move_hold(tx, tenant, campaign, used, Movement.CONSUME, amount)
        charges.uses.append((campaign, used, amount))

    async def _move_hold(
        self,
        tx: Tx,
        tenant: str,
        campaign: Campaign,
        coupon: Coupon,
        movement: Movement,
        amount: int,
    ) -> None:
        """After the end, a restore adds to the coupon's hold and a use takes from it. A
        use no hold covers (paid long after its lock lapsed, or issued as the campaign
        ended) is reserved again from the budget first, with its own ledger entry."""
        until = self.p.holding.until(coupon)
        store = self.p.holding.store
        if movement == Movement.RESTORE:
            await store.add(tenant, campaign.id, campaign.budget_id, {until: amount}, tx.session)
            return
        if await store.take(tenant, campaign.id, until, amount, tx.session):
            return
        reserved = await self.p.budgets.move(
            tenant, campaign.budget_id, Movement.RESERVE, amount, tx.session,
            campaign_id=campaign.id, coupon_id=coupon.id,
            note="used after its campaign's reservation was released",
        )  # fmt: skip
        if reserved is None:
            raise Conflict("the budget no longer covers this coupon", code="budget_exceeded")
        await self.p.campaigns.draw(tenant, campaign.id, {"reserved": amount}, tx.session)

    async def _return_coupon(self, tx: Tx, tenant: str, used: Coupon, now: datetime) -> None:
        """满返: a return coupon's paid order issues the follow-up batch's coupon. After
        the campaign ended, the follow-up's worth moves from the return coupon's hold to
        its own (none left: no follow-up)."""
        batch = await self.p.batches.get(tenant, used.batch_id, tx.session)
        assert batch is not None
        if batch.spec.discount.kind != DiscountKind.RETURN or batch.follow_up_batch_id is None:
            return
        follow = await self.p.batches.get(tenant, batch.follow_up_batch_id, tx.session)
        if follow is None or not await self.p.batches.take_one(tenant, follow.id, tx.session):
            return  # the follow-up batch is sold out: nothing to return
        # Its slot is the order, outside the per-customer slots: one per qualifying order.
        reference = f"order:{used.order_id}"
        coupon = new_coupon(
            follow, reference, used.customer_id, "order_return", reference, now, self.p.rng
        )
        campaign = await self.p.campaigns.get(tenant, used.campaign_id, tx.session)
        if campaign is not None and campaign.state == CampaignState.ENDED:
            worth, store = follow.spec.discount.max_value(), self.p.holding.store
            if not await store.take(
                tenant, campaign.id, self.p.holding.until(used), worth, tx.session
            ):
                await self.p.batches.put_back_one(tenant, follow.id, tx.session)
                return
            until = self.p.holding.until(coupon)
            await store.add(tenant, campaign.id, campaign.budget_id, {until: worth}, tx.session)
        await self.p.coupons.insert_one(coupon_doc(tenant, coupon), tx.session)
        await tx.emit(claimed_event(coupon), tenant=tenant)

    # --------------------------------------------------------- release and refund

    async def release(self, tenant: str, order_id: str) -> Coupon | None:
        """The order is cancelled unpaid: its coupon is available again (None: none held)."""

        async def work(tx: Tx) -> Coupon | None:
            return await self.release_in(tx, tenant, order_id)

        return await self._run(work)

    async def release_in(self, tx: Tx, tenant: str, order_id: str) -> Coupon | None:
        coupon = await self.p.coupons.for_order(tenant, order_id, tx.session)
        if coupon is None or coupon.lock is None or coupon.lock.order_id != order_id:
            return None
        if coupon.state not in (CouponState.LOCKED, CouponState.AVAILABLE):
            return None  # used: a cancelled paid order is a refund
        released = await self.p.coupons.change(
            tenant,
            coupon.id,
            {"state": {"$in": [LOCKED, AVAILABLE]}, "lock.order_id": order_id},
            {"$set": {"state": AVAILABLE}, "$unset": {"lock": ""}},
            tx.session,
        )
        await self.p.coupons.unlink_order(tenant, order_id, tx.session)
        return released

    async def refund(
        self, tenant: str, order_id: str, refund: Refund | None = None
    ) -> RefundAnswer:
        async with self.p.turns.of(tenant):
            return await self._run(lambda tx: self.refund_in(tx, tenant, order_id, refund))

    async def refund_in(
        self, tx: Tx, tenant: str, order_id: str, refund: Refund | None = None
    ) -> RefundAnswer:
        """The paid order is refunded, wholly (no lines: also a void) or in part
        (domain/refunds.py has the policy). What is given back of the subsidy leaves
        `consumed` at once (restore); it stays reserved while the coupon could still come
        back to the wallet whole, and goes back to the budget (release) when it cannot."""
        refund = refund or Refund()
        coupon = await self.p.coupons.for_order(tenant, order_id, tx.session)
        if coupon is None or coupon.state != CouponState.USED or coupon.order_id != order_id:
            return RefundAnswer(coupon=coupon, restored=False, reason="no_coupon_used")
        if refund.refund_id is not None and refund.refund_id in coupon.refund_ids:
            return RefundAnswer(coupon=coupon, restored=False, reason="refund_seen")
        batch = await self.p.batches.get(tenant, coupon.batch_id, tx.session)
        assert batch is not None
        now = utcnow()
        shares = coupon.lock.shares if coupon.lock else {}
        back, after = (
            given_back(shares, coupon.refunded_lines, refund.lines)
            if refund.lines is not None
            else (0, {i: s.quantity for i, s in shares.items()})
        )
        whole = refund.lines is None or wholly_refunded(shares, after)
        if whole:  # the rest, exactly, whatever the rounding of the shares before
            back = (coupon.discount or 0) - coupon.given_back
        may_return = batch.spec.return_on_refund and now < coupon.valid_until
        if whole and may_return:
            return await self._restore(tx, tenant, coupon, order_id, back, now)
        kept = await self._keep_used(tx, tenant, coupon, order_id, refund, after, back)
        if kept is None:
            return RefundAnswer(coupon=coupon, restored=False, reason="no_coupon_used")
        note = _refund_note(refund, order_id)
        # What may come back with the coupon stays its reservation; else back to the budget.
        await self._charge(tx, tenant, coupon, Movement.RESTORE, back, note, held=may_return)
        if not may_return:
            await self._charge(tx, tenant, coupon, Movement.RELEASE, back, note)
        reason = (
            "partly_refunded"
            if not whole
            else "batch_keeps_used_coupons"
            if not batch.spec.return_on_refund
            else "expired"
        )
        return RefundAnswer(coupon=kept, restored=False, reason=reason, given_back=back)

    async def _keep_used(
        self,
        tx: Tx,
        tenant: str,
        coupon: Coupon,
        order_id: str,
        refund: Refund,
        refunded: dict[str, int],
        back: int,
    ) -> Coupon | None:
        """The coupon stays used, with the refunded quantities and what was given back."""
        update: dict[str, Any] = {
            "$set": {"refunded_lines": refunded},
            "$inc": {"given_back": back},
        }
        if refund.refund_id is not None:
            update["$push"] = {"refund_ids": refund.refund_id}
        return await self.p.coupons.change(
            tenant, coupon.id, {"state": USED, "order_id": order_id}, update, tx.session
        )

    async def _restore(
        self, tx: Tx, tenant: str, coupon: Coupon, order_id: str, back: int, now: datetime
    ) -> RefundAnswer:
        """The whole order is refunded: the coupon returns to the wallet, and the subsidy
        not given back yet returns to the campaign's reservation (which then holds the
        coupon's whole worth again)."""
        restored = await self.p.coupons.change(
            tenant,
            coupon.id,
            {"state": USED, "order_id": order_id},
            {
                "$set": {"state": AVAILABLE},
                "$unset": {
                    "lock": "",
                    "order_id": "",
                    "discount": "",
                    "used_at": "",
                    "refunded_lines": "",
                    "given_back": "",
                    "refund_ids": "",
                },
            },
            tx.session,
        )
        if restored is None:
            return RefundAnswer(coupon=coupon, restored=False, reason="no_coupon_used")
        await self.p.coupons.unlink_order(tenant, order_id, tx.session)
        note = f"order {order_id} refunded"
        await self._charge(tx, tenant, coupon, Movement.RESTORE, back, note, held=True)
        await tx.emit(
            CouponRestored(
                coupon_id=coupon.id,
                customer_id=coupon.customer_id,
                order_id=order_id,
                discount=back,
                restored_at=now,
            ),
            tenant=tenant,
        )
        return RefundAnswer(coupon=restored, restored=True, given_back=back)

    # ---------------------------------------------------------------------- revoke

    async def revoke(self, tenant: str, coupon_id: str) -> Coupon:
        async def work(tx: Tx) -> Coupon:
            revoked = await self.p.coupons.change(
                tenant,
                coupon_id,
                {"state": AVAILABLE},
                {"$set": {"state": str(CouponState.REVOKED)}},
                tx.session,
            )
            if revoked is None:
                current = await self.p.coupons.get(tenant, coupon_id, tx.session)
                if current is None:
                    raise NotFound(f"no coupon {coupon_id}", code="coupon_not_found")
                if current.state == CouponState.REVOKED:
                    return current
                raise Conflict(
                    f"a {current.state} coupon cannot be revoked", code="coupon_not_available"
                )
            return revoked

        return await self._run(work)

    # ------------------------------------------------------------------ lock sweep

    async def sweep_expired_locks(self, limit: int = 200) -> int:
        """Locks whose order was not paid in time let their coupon go. The order keeps its
        link and the coupon its lock, so a payment that still arrives for that order can use
        the coupon if nobody took it meanwhile."""
        now = utcnow()
        swept = 0
        for link in await self.p.coupons.expired_locks(now, limit):
            tenant, order_id = link["_id"].split(":", 1)

            async def work(tx: Tx, tenant: str = tenant, order_id: str = order_id) -> bool:
                return await self._lapse(tx, tenant, order_id, now)

            swept += await self._run(work)
        return swept

    async def _lapse(self, tx: Tx, tenant: str, order_id: str, now: datetime) -> bool:
        link = await self.p.coupons.order_link(tenant, order_id, tx.session)
        if link is None or link.get("expires_at") is None or link["expires_at"] > now:
            return False
        lapsed = await self.p.coupons.change(
            tenant,
            link["coupon_id"],
            {"state": LOCKED, "lock.order_id": order_id, "lock.expires_at": {"$lte": now}},
            {"$set": {"state": AVAILABLE}},
            tx.session,
        )
        await self.p.coupons.relink_order(tenant, order_id, link["coupon_id"], None, tx.session)
        return lapsed is not None


#: How each movement of a coupon's subsidy changes its campaign's counters.
DRAWS: dict[Movement, Callable[[int], dict[str, int]]] = {
    Movement.CONSUME: lambda a: {"reserved": -a, "consumed": a},
    Movement.RESTORE: lambda a: {"reserved": a, "consumed": -a},
    Movement.RELEASE: lambda a: {"reserved": -a, "released": a},
}


def _refund_note(refund: Refund, order_id: str) -> str:
    if refund.lines is None:
        return f"order {order_id} refunded"
    lines = ", ".join(f"{ln.line_id} x{ln.quantity}" for ln in refund.lines)
    return f"refund {refund.refund_id or '-'} of order {order_id}: {lines}"


def _holds(coupon: Coupon, order_id: str, now: datetime) -> bool:
    """Whether the coupon is still held for, or was used by, the order."""
    if coupon.state == CouponState.USED:
        return coupon.order_id == order_id
    lock = coupon.lock
    return (
        coupon.state == CouponState.LOCKED
        and lock is not None
        and (lock.order_id == order_id and lock.expires_at > now)
    )

"""Claiming under flash-sale load: the hot path.

Per batch, each replica keeps an issuer that
- answers "sold out" from memory once the batch's stock is gone (the store is asked again
  only every `sold_out_recheck_seconds`, since another replica may hand stock back);
- leases stock from the store in blocks (one conditional `$inc` on `unleased` per block),
  so the coupons issued over all replicas never exceed the stock; each lease is recorded
  with this replica and the coupons issued under it (store/leases.py), so the stock a
  crashed replica held comes back once its heartbeat stops;
- queues the claims that arrive together and writes them in one transaction: one read of
  the claimants' coupons of the batch (per-customer and daily limits), one `insert_many`,
  one outbox entry with their `coupon.claimed.v1` events. A claim is answered only after
  that transaction commits, so no claim answered as successful is lost.
The unique slot indexes of the coupons settle races between replicas: a round that loses
one aborts as a whole, reads again and decides again. Leasing runs in a transaction of its
own between attempts, never inside a round's, so a round's count of coupons issued under
its lease (one update per flush) never conflicts with the lease growing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pymongo.errors import BulkWriteError, DuplicateKeyError

from contracts.coupon import CouponClaimed
from servicekit.clock import utcnow
from servicekit.errors import Conflict, NotFound
from servicekit.mongo import Document
from servicekit.runtime import Runtime
from servicekit.unit_of_work import Tx
from services.coupon.domain.batches import Audience, BatchSpec
from services.coupon.domain.coupons import (
    REFUSAL_DETAIL,
    Coupon,
    CouponState,
    Refusal,
    audience_refusal,
    claim_window_refusal,
    face_value,
    local_day,
)
from services.coupon.domain.decay import decayed_face_value
from services.coupon.service.batching import Batcher
from services.coupon.service.policies import PolicyBook
from services.coupon.settings import CouponSettings
from services.coupon.store.batches import Batch, BatchState, BatchStore
from services.coupon.store.coupons import (
    COUPONS,
    DAILY,
    CouponStore,
    coupon_doc,
    coupon_id,
    daily_id,
    grant_id,
)
from services.coupon.store.customers import CustomerOrdersStore
from services.coupon.store.leases import LeaseStore, Taken
from services.coupon.store.policies import PolicyStore
from services.coupon.store.races import is_duplicate_key

log = logging.getLogger("services.coupon.claims")
BATCH_CACHE_SECONDS = 1.0
ROUND_ATTEMPTS = 8


@dataclass(frozen=True)
class ClaimRequest:
    customer_id: str
    channel: str
    #: A grant's reference (partner exchange, points exchange): the same one answers the
    #: same coupon. None for a customer's own claim.
    reference: str | None = None


@dataclass
class Claimed:
    coupon: Coupon
    created: bool = True


Outcome = Claimed | Refusal


class _NeedStock(Exception):
    """A round needs more stock than this replica's lease holds: lease, then run again."""

    def __init__(self, units: int) -> None:
        self.units = units


class _LeaseLost(Exception):
    """The lease was closed by a sweep (this replica looked dead): lease afresh."""


class ClaimRefused(Conflict):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(REFUSAL_DETAIL[refusal], code=str(refusal))


@dataclass(frozen=True)
class _Seat:
    """An accepted claim: the request's index and the slots it takes."""

    index: int
    slot: int
    day: str
    #: Taken only in batches with a daily limit.
    day_slot: int | None


@dataclass
class _Plan:
    outcomes: list[Outcome | None]
    #: Requests repeating an earlier request's reference in the same round.
    followers: dict[int, int] = field(default_factory=dict)
    seats: list[_Seat] = field(default_factory=list)
    issued: dict[int, Coupon] = field(default_factory=dict)
    #: Whether each claimant has no paid order yet: read only for batches that decay.
    new_customers: dict[str, bool] = field(default_factory=dict)

    def open(self) -> list[int]:
        return [i for i, o in enumerate(self.outcomes) if o is None and i not in self.followers]

    def answers(self) -> list[Outcome]:
        answers: list[Outcome] = []
        for i, outcome in enumerate(self.outcomes):
            if outcome is None:
                first = self.followers.get(i)
                outcome = (
                    Claimed(self.issued[i])
                    if first is None
                    else _follow(self.outcomes[first], self.issued.get(first))
                )
            answers.append(outcome)
        return answers


def _follow(outcome: Outcome | None, coupon: Coupon | None) -> Outcome:
    """A repeated reference answers as the first request did (the same coupon, or refusal)."""
    if coupon is not None:
        return Claimed(coupon, created=False)
    assert outcome is not None
    return outcome


def _free(taken: set[int], limit: int) -> int | None:
    return next((n for n in range(1, limit + 1) if n not in taken), None)


def new_coupon(
    batch: Batch,
    slot: int | str,
    customer_id: str,
    channel: str,
    reference: str | None,
    now: datetime,
    rng: random.Random,
    new_customer: bool | None = None,
) -> Coupon:
    """The customer's coupon in `slot` of the batch (its id is derived from the slot; a
    random red packet's draw decays by the slot, the claim count, per the batch's policy)."""
    valid_from, valid_until = batch.spec.validity.window(now)
    return Coupon(
        id=coupon_id(batch.tenant, batch.id, customer_id, slot),
        batch_id=batch.id,
        campaign_id=batch.campaign_id,
        customer_id=customer_id,
        channel=channel,
        reference=reference,
        state=CouponState.AVAILABLE,
        face_value=decayed_face_value(face_value(batch.spec, rng), batch.spec, slot, new_customer),
        valid_from=valid_from,
        valid_until=valid_until,
        claimed_at=now,
    )


def claimed_event(coupon: Coupon) -> CouponClaimed:
    return CouponClaimed(
        coupon_id=coupon.id,
        batch_id=coupon.batch_id,
        campaign_id=coupon.campaign_id,
        customer_id=coupon.customer_id,
        channel=coupon.channel,
        reference=coupon.reference,
        face_value=coupon.face_value,
        valid_from=coupon.valid_from,
        valid_until=coupon.valid_until,
        claimed_at=coupon.claimed_at,
    )


class BatchIssuer:
    def __init__(self, desk: ClaimDesk, tenant: str, batch_id: str) -> None:
        self.desk = desk
        self.tenant = tenant
        self.batch_id = batch_id
        #: Stock units this replica holds and has not issued yet, and the lease holding them.
        self.lease = 0
        self.lease_id: str | None = None
        #: Stock left unleased in the store when this replica last leased.
        self._left: int | None = None
        self._sold_out_until = 0.0
        self.batcher: Batcher[ClaimRequest, Outcome] = Batcher(
            self._round, max_items=desk.settings.claim_flush_size, name=f"claims:{batch_id}"
        )

    def sold_out(self) -> bool:
        return self.lease == 0 and time.monotonic() < self._sold_out_until

    async def submit(self, request: ClaimRequest) -> Outcome:
        return await self.batcher.submit(request)

    async def _round(self, requests: list[ClaimRequest]) -> list[Outcome]:
        if self.sold_out() and not any(r.reference for r in requests):
            return [Refusal.SOLD_OUT] * len(requests)  # queued before it sold out: no store
        may_lease = True
        for attempt in range(ROUND_ATTEMPTS):
            try:
                plan = await self.desk.runtime.uow.run(
                    lambda tx, may_lease=may_lease: self._issue(tx, requests, may_lease)
                )
            except _NeedStock as need:
                await self._lease(need.units)
                may_lease = False  # once per round: what it got is what there is
                continue
            except _LeaseLost:
                self.lease, self.lease_id, may_lease = 0, None, True
                continue
            except (DuplicateKeyError, BulkWriteError) as exc:
                if not is_duplicate_key(exc):
                    raise
                await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                continue
            self.lease -= len(plan.issued)
            return plan.answers()
        raise Conflict("too many concurrent claims; retry", code="concurrent_update")

    async def _issue(self, tx: Tx, requests: list[ClaimRequest], may_lease: bool) -> _Plan:
        batch = await self.desk.batch(self.tenant, self.batch_id)
        now = utcnow()
        plan = _Plan(outcomes=[None] * len(requests))
        await self._replays(tx, requests, plan)
        await self._audience(tx, batch, requests, plan)
        await self._limits(tx, batch, requests, plan, now)
        self._stock(plan, may_lease)
        if plan.seats:
            await self._decaying_for(tx, batch, requests, plan)
            docs, daily, grants, events = self._coupons(batch, requests, plan, now)
            await self.desk.coupons.issue(docs, daily, grants, tx.session)
            assert self.lease_id is not None  # seats are only given out of a lease
            if not await self.desk.leases.count_issued(self.lease_id, len(docs), tx.session):
                raise _LeaseLost
            await tx.emit(*events, tenant=self.tenant)
        return plan

    async def _replays(self, tx: Tx, requests: list[ClaimRequest], plan: _Plan) -> None:
        refs = sorted({r.reference for r in requests if r.reference})
        if not refs:
            return
        keys = {ref: grant_id(self.tenant, self.batch_id, ref) for ref in refs}
        found = await self.desk.coupons.granted(list(keys.values()), tx.session)
        first: dict[str, int] = {}
        for i, r in enumerate(requests):
            if r.reference is None:
                continue
            if keys[r.reference] in found:
                plan.outcomes[i] = Claimed(found[keys[r.reference]], created=False)
            elif r.reference in first:
                plan.followers[i] = first[r.reference]
            else:
                first[r.reference] = i

    async def _audience(
        self, tx: Tx, batch: Batch, requests: list[ClaimRequest], plan: _Plan
    ) -> None:
        if batch.spec.audience == Audience.ANYONE:
            return
        open_ = plan.open()
        customers = sorted({requests[i].customer_id for i in open_})
        paid = await self.desk.customers.paid_orders(self.tenant, customers, tx.session)
        for i in open_:
            plan.outcomes[i] = audience_refusal(batch.spec, paid[requests[i].customer_id])

    async def _limits(
        self, tx: Tx, batch: Batch, requests: list[ClaimRequest], plan: _Plan, now: datetime
    ) -> None:
        """Per-customer and daily limits: the slots the claimants already hold are read by
        their keys (one `_id $in` read each), then each claim takes the next free slot."""
        open_ = plan.open()
        customers = sorted({requests[i].customer_id for i in open_})
        if not customers:
            return
        spec = batch.spec
        today = local_day(now, (await self.desk.policies.of(self.tenant)).zone)
        slots = await self._taken(
            COUPONS, customers, spec.per_customer_limit,
            lambda c, n: coupon_id(self.tenant, self.batch_id, c, n), tx,
        )  # fmt: skip
        day_slots: dict[str, set[int]] = {}
        if spec.per_customer_daily_limit is not None:
            day_slots = await self._taken(
                DAILY, customers, spec.per_customer_daily_limit,
                lambda c, n: daily_id(self.tenant, self.batch_id, c, today, n), tx,
            )  # fmt: skip
        for i in open_:
            seat = _seat(spec, i, requests[i].customer_id, today, slots, day_slots)
            if isinstance(seat, Refusal):
                plan.outcomes[i] = seat
            else:
                plan.seats.append(seat)

    async def _taken(
        self,
        collection: str,
        customers: list[str],
        limit: int,
        key_of: Callable[[str, int], str],
        tx: Tx,
    ) -> dict[str, set[int]]:
        keys = {key_of(c, n): (c, n) for c in customers for n in range(1, limit + 1)}
        found = await self.desk.coupons.existing(collection, list(keys), tx.session)
        taken: dict[str, set[int]] = {c: set() for c in customers}
        for k in found:
            customer, n = keys[k]
            taken[customer].add(n)
        return taken

    def _stock(self, plan: _Plan, may_lease: bool) -> None:
        """Seats beyond the lease are sold out, unless more may be leased first."""
        need = len(plan.seats) - self.lease
        if need > 0 and may_lease and not self.sold_out():
            raise _NeedStock(need)
        for seat in plan.seats[self.lease :]:
            plan.outcomes[seat.index] = Refusal.SOLD_OUT
        del plan.seats[self.lease :]

    async def _lease(self, need: int) -> None:
        """Lease what the round needs and a prefetch, in a transaction of its own."""
        batch = await self.desk.batch(self.tenant, self.batch_id)
        wanted = need + self._prefetch(batch)
        desk = self.desk

        async def take(tx: Tx) -> Taken:
            return await desk.leases.take(
                self.tenant, self.batch_id, desk.replica, self.lease_id, wanted, utcnow(),
                tx.session,
            )  # fmt: skip

        taken = await desk.runtime.uow.run(take)
        if taken.fresh:  # the lease named was closed by a sweep: what it held went back
            self.lease = 0
        self.lease += taken.units
        self.lease_id = taken.lease_id
        self._left = taken.left
        if taken.units < wanted or taken.left == 0:
            self._sold_out_until = time.monotonic() + desk.settings.sold_out_recheck_seconds

    def _prefetch(self, batch: Batch) -> int:
        """Units leased beyond this round's need: a block while stock is plentiful, a
        quarter of what is left near the end, so no replica strands much stock that
        claims at another replica would be refused for."""
        left = batch.unleased if self._left is None else self._left
        return min(self.desk.settings.stock_lease_block, left // 4)

    async def _decaying_for(
        self, tx: Tx, batch: Batch, requests: list[ClaimRequest], plan: _Plan
    ) -> None:
        """New or returning, for a decaying random red packet's factor (one read)."""
        if batch.spec.random_decay is None:
            return
        customers = sorted({requests[seat.index].customer_id for seat in plan.seats})
        paid = await self.desk.customers.paid_orders(self.tenant, customers, tx.session)
        plan.new_customers = {c: paid[c] == 0 for c in customers}

    def _coupons(
        self, batch: Batch, requests: list[ClaimRequest], plan: _Plan, now: datetime
    ) -> tuple[list[Document], list[str], dict[str, str], list[CouponClaimed]]:
        docs, daily, grants, events = [], [], {}, []
        for seat in plan.seats:
            r = requests[seat.index]
            coupon = new_coupon(
                batch, seat.slot, r.customer_id, r.channel, r.reference, now, self.desk.rng,
                plan.new_customers.get(r.customer_id),
            )  # fmt: skip
            plan.issued[seat.index] = coupon
            docs.append(coupon_doc(self.tenant, coupon))
            if seat.day_slot is not None:
                daily.append(
                    daily_id(self.tenant, self.batch_id, r.customer_id, seat.day, seat.day_slot)
                )
            if r.reference is not None:
                grants[grant_id(self.tenant, self.batch_id, r.reference)] = coupon.id
            events.append(claimed_event(coupon))
        return docs, daily, grants, events


def _seat(
    spec: BatchSpec,
    index: int,
    customer: str,
    today: str,
    slots: dict[str, set[int]],
    day_slots: dict[str, set[int]],
) -> _Seat | Refusal:
    """The free slots this claim takes, or the limit it hits."""
    taken = slots[customer]
    slot = _free(taken, spec.per_customer_limit)
    if slot is None:
        return Refusal.LIMIT_REACHED
    day_slot = None
    if spec.per_customer_daily_limit is not None:
        day_slot = _free(day_slots[customer], spec.per_customer_daily_limit)
        if day_slot is None:
            return Refusal.DAILY_LIMIT_REACHED
        day_slots[customer].add(day_slot)
    taken.add(slot)
    return _Seat(index, slot, today, day_slot)


class ClaimDesk:
    """Every batch issuer of this replica, and the batches they serve, cached briefly."""

    def __init__(
        self, runtime: Runtime, settings: CouponSettings, policies: PolicyBook | None = None
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        #: Tenants' policies: the time zone that daily limits count days in.
        self.policies = policies or PolicyBook(PolicyStore(runtime.db), settings)
        self.rng = random.SystemRandom()
        self.batches = BatchStore(runtime.db)
        self.coupons = CouponStore(runtime.db)
        self.leases = LeaseStore(runtime.db)
        #: This replica, as its leases and heartbeats name it.
        self.replica = f"rep_{uuid.uuid4().hex[:16]}"
        self.customers = CustomerOrdersStore(runtime.db)
        self._issuers: dict[tuple[str, str], BatchIssuer] = {}
        self._cache: dict[tuple[str, str], tuple[float, Batch]] = {}
        self._loading: dict[tuple[str, str], asyncio.Future[Batch]] = {}

    async def batch(self, tenant: str, batch_id: str) -> Batch:
        """The batch as read at most `BATCH_CACHE_SECONDS` ago. Concurrent callers share one
        read when it is due, so a stampede costs the store one read per period."""
        key = (tenant, batch_id)
        cached = self._cache.get(key)
        if cached and time.monotonic() - cached[0] < BATCH_CACHE_SECONDS:
            return cached[1]
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._load(tenant, batch_id))
            self._loading[key] = loading
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(loading)

    async def _load(self, tenant: str, batch_id: str) -> Batch:
        batch = await self.batches.get(tenant, batch_id)
        if batch is None:
            raise NotFound(f"no batch {batch_id}", code="batch_not_found")
        self._cache[(tenant, batch_id)] = (time.monotonic(), batch)
        return batch

    def issuer(self, tenant: str, batch_id: str) -> BatchIssuer:
        key = (tenant, batch_id)
        if key not in self._issuers:
            self._issuers[key] = BatchIssuer(self, tenant, batch_id)
        return self._issuers[key]

    def sold_out(self, tenant: str, batch_id: str) -> bool:
        issuer = self._issuers.get((tenant, batch_id))
        return issuer is not None and issuer.sold_out()

    async def issue(
        self, tenant: str, batch: Batch, request: ClaimRequest, *, check_window: bool
    ) -> Claimed:
        """Issue a coupon of `batch` to the customer, or ClaimRefused with the reason."""
        refusal = _open_refusal(batch, utcnow() if check_window else None)
        if refusal is not None:
            raise ClaimRefused(refusal)
        outcome = await self.issuer(tenant, batch.id).submit(request)
        if isinstance(outcome, Refusal):
            raise ClaimRefused(outcome)
        return outcome

    async def stop(self) -> None:
        """Stop the issuers and hand their unissued leases back to the stock (a lease that
        cannot be handed back now is swept back once this replica's heartbeat is stale)."""
        for issuer in self._issuers.values():
            await issuer.batcher.stop()
            try:
                if issuer.lease_id is not None:
                    await self.close_lease(issuer.lease_id)
            except Exception:
                log.exception(
                    "lease hand-back failed; the sweep returns it", extra={"lease": issuer.lease_id}
                )
            issuer.lease, issuer.lease_id = 0, None
        with contextlib.suppress(Exception):
            await self.leases.forget(self.replica)

    async def close_lease(self, lease_id: str) -> int | None:
        """Give the lease's unissued units back to its batch (None: closed before)."""

        async def close(tx: Tx) -> int | None:
            return await self.leases.close(lease_id, self.replica, utcnow(), tx.session)

        return await self.runtime.uow.run(close)

    async def sweep_stranded_leases(self) -> int:
        """Close the leases of replicas whose heartbeat stopped; units given back."""
        ttl = self.settings.lease_ttl_seconds
        returned = 0
        for lease_id in await self.leases.stranded(utcnow(), ttl):
            returned += await self.close_lease(lease_id) or 0
        return returned


def _open_refusal(batch: Batch, now: datetime | None) -> Refusal | None:
    if batch.state != BatchState.ACTIVE:
        return Refusal.BATCH_NOT_ACTIVE
    if batch.issuing_blocked:  # the budget's alert is raised (monitoring)
        return Refusal.BUDGET_BLOCKED
    return claim_window_refusal(batch.spec, now) if now is not None else None

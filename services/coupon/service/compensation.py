"""Compensation use cases: set the policy, request (issued at once or held for review),
approve, reject.

A request is decided in one transaction: it reads the customer's tallies and notes the
order, applies the thresholds (domain), and either counts the compensation (a conditional
update per period) and marks it `issuing`, or stores it `pending_review`. The coupon is
then issued through the claim desk as a grant whose reference is the compensation's id, so
issuing again after a crash or a repeated request gives the same coupon; a second
transaction marks it issued. If the desk refuses (sold out, limit reached, batch not
active), the count is undone: a new request leaves nothing behind (409 with the desk's
code), an approved one goes back to review with the refusal noted."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from typing import TypeVar

from pymongo.errors import BulkWriteError, DuplicateKeyError

from contracts.coupon import CompensationHeld
from servicekit.clock import utcnow
from servicekit.context import Actor
from servicekit.errors import Conflict, NotFound
from servicekit.pagination import PageRequest
from servicekit.runtime import Runtime
from servicekit.unit_of_work import Tx, UnitOfWork
from services.coupon.domain import compensation as rules
from services.coupon.domain.batches import BatchSpec
from services.coupon.domain.compensation import (
    CHANNEL,
    Compensation,
    CompensationRequest,
    CompensationState,
)
from services.coupon.domain.compensation_policy import (
    CompensationPolicy,
    Period,
    StoredPolicy,
    check_policy_batches,
    period_key,
)
from services.coupon.service.claims import ClaimDesk, ClaimRefused, ClaimRequest
from services.coupon.service.parts import policies
from services.coupon.service.policies import PolicyBook
from services.coupon.store.batches import BatchStore
from services.coupon.store.compensation import (
    CompensationStore,
    TallyMoved,
    compensation_id,
    tally_id,
)
from services.coupon.store.races import is_duplicate_key

T = TypeVar("T")
ATTEMPTS = 12


class CompensationService:
    def __init__(
        self,
        uow: UnitOfWork,
        store: CompensationStore,
        batches: BatchStore,
        desk: ClaimDesk,
        policies: PolicyBook,
    ) -> None:
        self.uow = uow
        self.store = store
        self.batches = batches
        self.desk = desk
        #: Periods (day, week, month) are counted in the tenant's own time zone.
        self.policies = policies

    # ------------------------------------------------------------------ policy

    async def set_policy(
        self, tenant: str, policy: CompensationPolicy, actor: Actor
    ) -> StoredPolicy:
        check_policy_batches(policy, await self._specs(tenant, policy.batch_ids), utcnow())
        stored = StoredPolicy(**policy.model_dump(), updated_by=actor.id, updated_at=utcnow())
        await self.store.put_policy(tenant, stored)
        return stored

    async def policy(self, tenant: str) -> StoredPolicy:
        policy = await self.store.policy(tenant)
        if policy is None:
            raise NotFound("no compensation policy is set", code="no_compensation_policy")
        return policy

    async def remove_policy(self, tenant: str) -> None:
        if not await self.store.remove_policy(tenant):
            raise NotFound("no compensation policy is set", code="no_compensation_policy")

    async def _specs(self, tenant: str, batch_ids: list[str]) -> dict[str, BatchSpec]:
        found = await self.batches.many(tenant, batch_ids)
        return {i: b.spec for i, b in found.items()}

    # ----------------------------------------------------------------- request

    async def request(
        self, tenant: str, request: CompensationRequest, actor: Actor
    ) -> Compensation:
        """The compensation for the request: issued, pending review, or (a repeated
        reference) as the first request left it."""
        policy = await self.policy(tenant)
        cid = compensation_id(tenant, request.reference)
        existing = await self.store.get(tenant, cid)
        if existing is not None:
            return await self._again(tenant, existing, request)
        specs = await self._specs(tenant, policy.batch_ids)
        discounts = {i: spec.discount for i, spec in specs.items()}
        batch_id, value = rules.choose_batch(policy, request, discounts)
        zone = (await self.policies.of(tenant)).zone

        async def decide(tx: Tx) -> tuple[Compensation, bool]:
            found = await self.store.get(tenant, cid, tx.session)
            if found is not None:
                return found, False  # the same reference raced us and won
            now = utcnow()
            periods = _periods(tenant, request.customer_id, now, zone)
            tallies = await self.store.read_tallies(periods, tx.session)
            seen = []
            if request.order_id is not None:
                seen = await self.store.note_order(tenant, request.order_id, cid, tx.session)
            exceeded = rules.assess(policy, value, tallies, order_seen=bool(seen))
            c = rules.requested(cid, request, batch_id, value, exceeded, by=actor.id, now=now)
            if exceeded:
                await tx.emit(_held(c), tenant=tenant)
            else:
                await self.store.count_within(periods, policy.period_limits, value, tx.session)
                c = c.model_copy(update={"counted_in": _keys(periods, now, zone)})
            await self.store.add(tenant, c, tx.session)
            return c, True

        c, created = await self._settled(decide)
        if not created:
            return await self._again(tenant, c, request)
        if c.state == CompensationState.ISSUING:
            return await self._issue(tenant, c, undo_to=None)
        return c

    async def _again(
        self, tenant: str, existing: Compensation, request: CompensationRequest
    ) -> Compensation:
        if not rules.same_request(existing, request):
            raise Conflict(
                "this reference was used for a different compensation",
                code="reference_reused",
                compensation_id=existing.id,
            )
        if existing.state == CompensationState.ISSUING:
            # An earlier attempt stopped between counting and issuing: finish it.
            undo = None if existing.reviewed_by is None else CompensationState.PENDING_REVIEW
            return await self._issue(tenant, existing, undo_to=undo)
        return existing

    # ------------------------------------------------------------------ review

    async def approve(self, tenant: str, cid: str, actor: Actor, note: str | None) -> Compensation:
        """Count it (a reviewer's approval is not held to the thresholds) and issue it."""
        zone = (await self.policies.of(tenant)).zone

        async def work(tx: Tx) -> Compensation:
            c = await self._get(tenant, cid, tx)
            now = utcnow()
            moved = rules.approved(c, by=actor.id, now=now, note=note)
            periods = _periods(tenant, c.customer_id, now, zone)
            for tally in periods.values():
                await self.store.count(tally, 1, c.value, tx.session)
            moved = moved.model_copy(
                update={"counted_in": _keys(periods, now, zone), "issue_refusal": None}
            )
            await self._save(tenant, moved, c.state, tx)
            return moved

        approved = await self._settled(work)
        return await self._issue(tenant, approved, undo_to=CompensationState.PENDING_REVIEW)

    async def reject(self, tenant: str, cid: str, actor: Actor, reason: str) -> Compensation:
        """Rejected with the reason; the order no longer counts as compensated by it."""

        async def work(tx: Tx) -> Compensation:
            c = await self._get(tenant, cid, tx)
            moved = rules.rejected(c, by=actor.id, now=utcnow(), reason=reason)
            await self._save(tenant, moved, c.state, tx)
            if c.order_id is not None:
                await self.store.forget_order(tenant, c.order_id, c.id, tx.session)
            return moved

        return await self._settled(work)

    async def get(self, tenant: str, cid: str) -> Compensation:
        c = await self.store.get(tenant, cid)
        if c is None:
            raise NotFound(f"no compensation {cid}", code="compensation_not_found")
        return c

    async def page(
        self,
        tenant: str,
        page: PageRequest,
        state: CompensationState | None,
        customer_id: str | None,
    ) -> tuple[list[Compensation], str | None]:
        return await self.store.page(tenant, page, state, customer_id)

    async def _get(self, tenant: str, cid: str, tx: Tx) -> Compensation:
        c = await self.store.get(tenant, cid, tx.session)
        if c is None:
            raise NotFound(f"no compensation {cid}", code="compensation_not_found")
        return c

    async def _save(self, tenant: str, c: Compensation, was: CompensationState, tx: Tx) -> None:
        if not await self.store.replace(tenant, c, was, tx.session):
            raise TallyMoved(c.id)  # reviewed meanwhile: decide again on what is there now

    async def resume_stalled(self, before: datetime, limit: int = 100) -> int:
        """Finish the compensations left `issuing` (a replica stopped between counting and
        issuing): issue, or undo as a refusal would. How many were taken up."""
        stalled = await self.store.stalled(before, limit)
        for tenant, c in stalled:
            undo = None if c.reviewed_by is None else CompensationState.PENDING_REVIEW
            with contextlib.suppress(ClaimRefused):  # undone, as for a refused request
                await self._issue(tenant, c, undo_to=undo)
        return len(stalled)

    # ------------------------------------------------------------------- issue

    async def _issue(
        self, tenant: str, c: Compensation, *, undo_to: CompensationState | None
    ) -> Compensation:
        """Issue the coupon as a grant (reference: the compensation's id) and mark it issued;
        on a refusal, undo the count and raise it (409 with the desk's code)."""
        batch = await self.desk.batch(tenant, c.batch_id)
        grant = ClaimRequest(c.customer_id, CHANNEL, reference=c.id)
        try:
            claimed = await self.desk.issue(tenant, batch, grant, check_window=False)
        except ClaimRefused as refused:
            code = refused.code
            await self._settled(lambda tx: self._undo(tx, tenant, c, undo_to, code))
            raise
        coupon = claimed.coupon

        async def done(tx: Tx) -> Compensation:
            now = utcnow()
            issued = c.model_copy(
                update={
                    "state": CompensationState.ISSUED,
                    "coupon_id": coupon.id,
                    "value": coupon.face_value,
                    "issued_at": now,
                }
            )
            if not await self.store.replace(tenant, issued, CompensationState.ISSUING, tx.session):
                return await self._get(tenant, c.id, tx)  # a concurrent retry finished it
            if coupon.face_value != c.value:  # a random batch drew less than it counted
                for tally in self._counted(tenant, c).values():
                    await self.store.count(tally, 0, coupon.face_value - c.value, tx.session)
            return issued

        return await self._settled(done)

    async def _undo(
        self,
        tx: Tx,
        tenant: str,
        c: Compensation,
        undo_to: CompensationState | None,
        refusal: str,
    ) -> None:
        if undo_to is None:
            gone = await self.store.remove(tenant, c.id, CompensationState.ISSUING, tx.session)
            if gone and c.order_id is not None:
                await self.store.forget_order(tenant, c.order_id, c.id, tx.session)
        else:
            back = c.model_copy(
                update={"state": undo_to, "issue_refusal": refusal, "counted_in": {}}
            )
            gone = await self.store.replace(tenant, back, CompensationState.ISSUING, tx.session)
        if gone:
            for tally in self._counted(tenant, c).values():
                await self.store.count(tally, -1, -c.value, tx.session)

    def _counted(self, tenant: str, c: Compensation) -> dict[Period, str]:
        return {p: tally_id(tenant, c.customer_id, p, k) for p, k in c.counted_in.items()}

    async def _settled(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """`uow.run(work)`, run again after a lost race (a tally or compensation that moved,
        a key another request inserted first) so the decision is taken on what won."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self.uow.run(work)
            except (TallyMoved, DuplicateKeyError, BulkWriteError) as exc:
                if not (isinstance(exc, TallyMoved) or is_duplicate_key(exc)):
                    raise
                await asyncio.sleep(random.uniform(0, 0.01 * attempt))
        raise Conflict("too many concurrent changes; retry", code="concurrent_update")


def compensations_on(runtime: Runtime, desk: ClaimDesk) -> CompensationService:
    return CompensationService(
        runtime.uow,
        CompensationStore(runtime.db),
        BatchStore(runtime.db),
        desk,
        policies(runtime),
    )


def _periods(tenant: str, customer_id: str, now: datetime, zone: tzinfo) -> dict[Period, str]:
    return {p: tally_id(tenant, customer_id, p, period_key(p, now, zone)) for p in Period}


def _keys(periods: dict[Period, str], now: datetime, zone: tzinfo) -> dict[Period, str]:
    return {p: period_key(p, now, zone) for p in periods}


def _held(c: Compensation) -> CompensationHeld:
    return CompensationHeld(
        compensation_id=c.id,
        customer_id=c.customer_id,
        order_id=c.order_id,
        batch_id=c.batch_id,
        value=c.value,
        thresholds=[e.threshold for e in c.exceeded],
        requested_by=c.requested_by,
        requested_at=c.requested_at,
    )

"""What the coupon service builds once per replica: the claim desk, the rate limiter and the
checkout parts, kept in `runtime.state` by a worker that also hands back unissued stock
leases when the replica stops."""

from __future__ import annotations

import asyncio
import logging
import random

from pymongo.asynchronous.database import AsyncDatabase

from servicekit.clock import utcnow
from servicekit.mongo import Document
from servicekit.runtime import Runtime, Worker
from servicekit.unit_of_work import UnitOfWork
from services.coupon.domain.batches import MarginPolicy
from services.coupon.events.alerts_stream import run_reader  # monitoring-and-alerts part
from services.coupon.service.alert_evaluator import run_evaluator  # monitoring-and-alerts part
from services.coupon.service.claims import ClaimDesk
from services.coupon.service.holds import Holding, release_due_holds
from services.coupon.service.partner_webhooks import send_webhooks  # codes-and-partners part
from services.coupon.service.policies import PolicyBook, policy_book
from services.coupon.service.rate_limits import RateLimiter
from services.coupon.service.redemption import Checkout, RedemptionService, Turns
from services.coupon.settings import CouponSettings
from services.coupon.store.batches import BatchStore
from services.coupon.store.budgets import BudgetStore
from services.coupon.store.campaigns import CampaignStore
from services.coupon.store.coupons import CouponStore
from services.coupon.store.customers import CustomerOrdersStore
from services.coupon.store.holds import HoldStore
from services.coupon.store.policies import PolicyStore
from services.coupon.store.rate_windows import RateWindowStore, sweep_expired

log = logging.getLogger("services.coupon.parts")
DESK, LIMITER, TURNS = "claim_desk", "rate_limiter", "charge_turns"


def policy(settings: CouponSettings) -> MarginPolicy:
    """The service-wide default margin rules (a tenant's own are in `policies(runtime)`)."""
    return MarginPolicy(
        min_margin_percent=settings.min_margin_percent,
        cost_ratio_percent=settings.cost_ratio_percent,
    )


def policies(runtime: Runtime) -> PolicyBook:
    return policy_book(runtime)


def redemption(runtime: Runtime, settings: CouponSettings) -> RedemptionService:
    service = redemption_on(runtime.db, runtime.uow, settings, policies(runtime))
    service.p.turns = runtime.state.setdefault(TURNS, Turns())
    return service


def redemption_on(
    db: AsyncDatabase[Document],
    uow: UnitOfWork | None,
    settings: CouponSettings,
    book: PolicyBook | None = None,
) -> RedemptionService:
    """The use cases on `db`; without a unit of work only the `*_in(tx, ...)` steps run
    (an event handler's transaction)."""
    return RedemptionService(
        Checkout(
            uow=uow,
            coupons=CouponStore(db),
            batches=BatchStore(db),
            budgets=BudgetStore(db),
            campaigns=CampaignStore(db),
            customers=CustomerOrdersStore(db),
            policies=book or PolicyBook(PolicyStore(db), settings),
            lock_seconds=settings.lock_seconds,
            rng=random.SystemRandom(),
            holding=holding(db, settings),
        )
    )


def holding(db: AsyncDatabase[Document], settings: CouponSettings) -> Holding:
    """Ended campaigns' holds, with the times that say how long a coupon can still cost."""
    return Holding(HoldStore(db), settings.lock_seconds, settings.hold_bucket_seconds)


def install(runtime: Runtime) -> ClaimDesk:
    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    desk = ClaimDesk(runtime, settings, policies(runtime))
    runtime.state[DESK] = desk
    runtime.state[LIMITER] = RateLimiter(RateWindowStore(runtime.db))
    return desk


async def _hold_parts(runtime: Runtime) -> None:
    desk = runtime.state.get(DESK) or install(runtime)
    try:
        await asyncio.Event().wait()
    finally:
        await runtime.state[LIMITER].batcher.stop()
        await desk.stop()
        if TURNS in runtime.state:
            await runtime.state[TURNS].stop()


async def _sweep_locks(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    service = redemption(runtime, settings)
    while True:
        try:
            await service.sweep_expired_locks()
        except Exception:
            log.exception("lock sweep failed; the next round retries")
        await asyncio.sleep(settings.lock_sweep_seconds)


async def _sweep_rate_windows(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    store = RateWindowStore(runtime.db)
    while True:
        try:
            await sweep_expired(store, utcnow())
        except Exception:
            log.exception("rate window sweep failed; the next round retries")
        await asyncio.sleep(settings.rate_window_sweep_seconds)


async def _beat(runtime: Runtime) -> None:
    """This replica's heartbeat: while it beats, nobody sweeps the stock it leased."""
    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    desk: ClaimDesk = runtime.state.get(DESK) or install(runtime)
    while True:
        try:
            await desk.leases.beat(desk.replica, utcnow())
        except Exception:
            log.exception("lease heartbeat failed; the next round retries")
        await asyncio.sleep(settings.lease_heartbeat_seconds)


async def _sweep_leases(runtime: Runtime) -> None:
    """Stock leased by replicas that stopped without handing it back returns to the stock."""
    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    desk: ClaimDesk = runtime.state.get(DESK) or install(runtime)
    while True:
        try:
            returned = await desk.sweep_stranded_leases()
            if returned:
                log.info("stranded stock returned", extra={"units": returned})
        except Exception:
            log.exception("lease sweep failed; the next round retries")
        await asyncio.sleep(settings.lease_sweep_seconds)


async def _sweep_holds(runtime: Runtime) -> None:
    """Ended campaigns' reservations go back to their budgets as their coupons expire."""
    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    db = runtime.db
    while True:
        try:
            await release_due_holds(runtime.uow, HoldStore(db), BudgetStore(db), CampaignStore(db))
        except Exception:
            log.exception("hold sweep failed; the next round retries")
        await asyncio.sleep(settings.hold_sweep_seconds)


WORKERS = [
    Worker("claim-desk", _hold_parts),
    Worker("lock-sweep", _sweep_locks),
    Worker("rate-window-sweep", _sweep_rate_windows),
    Worker("lease-heartbeat", _beat),
    Worker("lease-sweep", _sweep_leases),
    Worker("hold-sweep", _sweep_holds),
]
WORKERS.append(Worker("partner-webhooks", send_webhooks))  # codes-and-partners part
WORKERS += [  # monitoring-and-alerts part (issue 7): the broker reader and the evaluator
    Worker("alert-stream", run_reader),
    Worker("alert-evaluator", run_evaluator),
]


async def _resume_compensations(runtime: Runtime) -> None:  # compensation-and-subsidy part
    from services.coupon.service.compensation_resume import resume_compensations

    await resume_compensations(runtime)


WORKERS.append(Worker("compensation-resume", _resume_compensations))  # compensation part


async def _notice_expiring(runtime: Runtime) -> None:  # reach part (issue 8)
    from services.coupon.service.expiry_notices import run

    await run(runtime)


WORKERS.append(Worker("expiry-notices", _notice_expiring))  # reach part (issue 8)


async def _run_jobs(runtime: Runtime) -> None:  # channels part (issue 7)
    # Imported here: the job kinds issue through the claim desk these parts build.
    from services.coupon.service.jobs import run_jobs

    await run_jobs(runtime)


WORKERS.append(Worker("jobs", _run_jobs))  # channels part (issue 7): targeted issues

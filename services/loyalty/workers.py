"""Background loops of the loyalty service: the maturing sweep (release held points, expire
lots, remind ahead of expiry), the tier sweep (warnings, evaluations), benefit-card expiry,
and the recovery of points-for-coupon exchanges the coupon service has not answered yet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from servicekit.runtime import Runtime, Worker
from services.loyalty.service.benefits import BenefitService
from services.loyalty.service.exchanges import ExchangeService
from services.loyalty.service.points import PointsService
from services.loyalty.service.tiers import TierService
from services.loyalty.settings import LoyaltySettings

log = logging.getLogger("services.loyalty.workers")
BATCH = 200


def sweep(name: str, round_of: Callable[[Runtime], Callable[[], Awaitable[int]]]) -> Worker:
    """A loop running `round_of(runtime)()` until cancelled: at once again after a full
    batch, else after the configured interval; a failed round is logged, not fatal."""

    async def run(runtime: Runtime) -> None:
        assert isinstance(runtime.settings, LoyaltySettings)
        interval = runtime.settings.sweep_interval_seconds
        one_round = round_of(runtime)
        while True:
            done = 0
            try:
                done = await one_round()
            except Exception:
                log.exception("%s round failed; the next round retries", name)
            if done < BATCH:
                await asyncio.sleep(interval)

    return Worker(name=name, run=run)


def _points_round(runtime: Runtime) -> Callable[[], Awaitable[int]]:
    service = PointsService(runtime.uow)
    return lambda: service.mature_due(limit=BATCH)


def _tiers_round(runtime: Runtime) -> Callable[[], Awaitable[int]]:
    service = TierService(runtime.uow)
    return lambda: service.evaluate_due(limit=BATCH)


def _cards_round(runtime: Runtime) -> Callable[[], Awaitable[int]]:
    service = BenefitService(runtime.uow)
    return lambda: service.expire_due(limit=BATCH)


def _exchanges_round(runtime: Runtime) -> Callable[[], Awaitable[int]]:
    service = ExchangeService(runtime.uow, runtime.state["coupons"])
    return lambda: service.resume_unsettled(limit=BATCH)


async def _close_coupon_client(runtime: Runtime) -> None:
    """Owns the coupon client's lifetime: closes it when the service stops."""
    try:
        await asyncio.Event().wait()
    finally:
        await runtime.state["coupons"].close()


WORKERS: list[Worker] = [
    sweep("points-maturing", _points_round),
    sweep("tier-sweep", _tiers_round),
    sweep("benefit-card-expiry", _cards_round),
    sweep("coupon-exchange-recovery", _exchanges_round),
    Worker(name="coupon-client", run=_close_coupon_client),
]

"""The coupon service's route dependencies: use cases built from the runtime. They are
`async def` although they do no I/O: FastAPI runs a plain `def` dependency in a worker
thread, a hop the claim hot path cannot afford."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from servicekit.runtime import Runtime, RuntimeDep, runtime_of
from services.coupon.domain.batches import ID_PATTERN
from services.coupon.service import parts
from services.coupon.service.budgets import BudgetService
from services.coupon.service.campaigns import CampaignService
from services.coupon.service.claims import ClaimDesk
from services.coupon.service.policies import PolicyBook
from services.coupon.service.rate_limits import RateLimiter
from services.coupon.service.redemption import RedemptionService
from services.coupon.settings import CouponSettings
from services.coupon.store.batches import BatchStore
from services.coupon.store.budgets import BudgetStore
from services.coupon.store.campaigns import CampaignStore
from services.coupon.store.coupons import CouponStore

Id = Annotated[str, Path(pattern=ID_PATTERN)]


def settings_of(runtime: Runtime) -> CouponSettings:
    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    return settings


async def _budgets(runtime: RuntimeDep) -> BudgetService:
    return BudgetService(runtime.uow, BudgetStore(runtime.db))


async def _campaigns(runtime: RuntimeDep) -> CampaignService:
    db = runtime.db
    return CampaignService(
        runtime.uow,
        CampaignStore(db),
        BudgetStore(db),
        BatchStore(db),
        CouponStore(db),
        parts.policies(runtime),
        parts.holding(db, settings_of(runtime)),
    )


# The claim path's dependencies take the request, not `RuntimeDep`: FastAPI solves each
# nested dependency again on every request (about 10 us of CPU each).
async def _desk(request: Request) -> ClaimDesk:
    runtime = runtime_of(request)
    return runtime.state.get(parts.DESK) or parts.install(runtime)


async def _limiter(request: Request) -> RateLimiter:
    await _desk(request)
    return runtime_of(request).state[parts.LIMITER]


async def _policies(runtime: RuntimeDep) -> PolicyBook:
    return parts.policies(runtime)


async def _redemption(runtime: RuntimeDep) -> RedemptionService:
    return parts.redemption(runtime, settings_of(runtime))


BudgetsDep = Annotated[BudgetService, Depends(_budgets)]
CampaignsDep = Annotated[CampaignService, Depends(_campaigns)]
DeskDep = Annotated[ClaimDesk, Depends(_desk)]
LimiterDep = Annotated[RateLimiter, Depends(_limiter)]
PoliciesDep = Annotated[PolicyBook, Depends(_policies)]
RedemptionDep = Annotated[RedemptionService, Depends(_redemption)]

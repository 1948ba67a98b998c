"""The coupon service's route dependencies: use cases built from the runtime."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from servicekit.runtime import Runtime, RuntimeDep
from services.coupon.domain.batches import ID_PATTERN
from services.coupon.service import parts
from services.coupon.service.budgets import BudgetService
from services.coupon.service.campaigns import CampaignService
from services.coupon.service.claims import ClaimDesk
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


def _budgets(runtime: RuntimeDep) -> BudgetService:
    return BudgetService(runtime.uow, BudgetStore(runtime.db))


def _campaigns(runtime: RuntimeDep) -> CampaignService:
    db = runtime.db
    return CampaignService(
        runtime.uow,
        CampaignStore(db),
        BudgetStore(db),
        BatchStore(db),
        CouponStore(db),
        parts.policy(settings_of(runtime)),
    )


def _desk(runtime: RuntimeDep) -> ClaimDesk:
    return runtime.state.get(parts.DESK) or parts.install(runtime)


def _limiter(runtime: RuntimeDep) -> RateLimiter:
    _desk(runtime)
    return runtime.state[parts.LIMITER]


def _redemption(runtime: RuntimeDep) -> RedemptionService:
    return parts.redemption(runtime, settings_of(runtime))


BudgetsDep = Annotated[BudgetService, Depends(_budgets)]
CampaignsDep = Annotated[CampaignService, Depends(_campaigns)]
DeskDep = Annotated[ClaimDesk, Depends(_desk)]
LimiterDep = Annotated[RateLimiter, Depends(_limiter)]
RedemptionDep = Annotated[RedemptionService, Depends(_redemption)]

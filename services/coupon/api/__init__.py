"""Coupon HTTP API: routes validate and delegate to the use cases."""

from fastapi import APIRouter

from services.coupon.api import budgets, campaigns, claims, wallet

router = APIRouter()
for part in (budgets, campaigns, claims, wallet):
    router.include_router(part.router)

__all__ = ["router"]

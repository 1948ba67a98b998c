"""Loyalty HTTP API: routes validate and delegate to the use cases."""

from fastapi import APIRouter

from services.loyalty.api import benefits, exchanges, points, stored_value, tiers

router = APIRouter()
for part in (points, exchanges, tiers, benefits, stored_value):
    router.include_router(part.router)

__all__ = ["router"]

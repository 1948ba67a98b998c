"""Customer HTTP API: routes validate and delegate to the use cases."""

from fastapi import APIRouter

from services.customer.api import (
    behaviour,
    consents,
    custom_fields,
    customers,
    follow_ups,
    orders,
)

router = APIRouter()
for part in (customers, custom_fields, consents, follow_ups, behaviour, orders):
    router.include_router(part.router)

__all__ = ["router"]

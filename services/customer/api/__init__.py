"""Customer HTTP API: routes validate and delegate to the use cases."""

from fastapi import APIRouter

from servicekit.jobs import jobs_router
from services.customer.api import (
    behaviour,
    consents,
    custom_fields,
    customers,
    data_rights,
    follow_ups,
    handover,
    imports,
    merge,
    orders,
    overview,
)

router = APIRouter()
for part in (customers, custom_fields, consents, follow_ups, behaviour, orders):
    router.include_router(part.router)
for part in (merge, data_rights, overview):
    router.include_router(part.router)

router.include_router(jobs_router())
for part in (handover, imports):
    router.include_router(part.router)

__all__ = ["router"]

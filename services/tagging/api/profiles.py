from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from servicekit.clock import utcnow
from servicekit.context import TenantDep
from servicekit.errors import NotFound
from servicekit.runtime import RuntimeDep
from services.tagging.domain.profiles import CustomerProfile, TenantPortrait
from services.tagging.store import ProfileStore
from services.tagging.store.assignments import AssignmentStore

router = APIRouter(tags=["profiles"])


async def _store(runtime: RuntimeDep) -> ProfileStore:
    return ProfileStore(runtime.db)


ProfilesDep = Annotated[ProfileStore, Depends(_store)]


@router.get("/customers/{customer_id}/profile")
async def get_profile(
    customer_id: Annotated[str, Path(pattern=r"^cus_[0-9a-f]{32}$")],
    tenant: TenantDep,
    profiles: ProfilesDep,
    runtime: RuntimeDep,
) -> CustomerProfile:
    """The customer as tagging knows them, with their tags."""
    profile = await profiles.profile(tenant, customer_id)
    if profile is None:
        raise NotFound(f"tagging knows no customer {customer_id} yet", code="profile_not_found")
    now = utcnow()
    assignments = await AssignmentStore(runtime.db).of_customer(tenant, customer_id)
    tags = sorted(a.tag_id for a in assignments if a.expires_at is None or a.expires_at > now)
    return profile.model_copy(update={"tags": tags})


@router.get("/portrait")
async def get_portrait(tenant: TenantDep, profiles: ProfilesDep) -> TenantPortrait:
    """Counts of the tenant's customers by source channel and lifecycle stage."""
    return await profiles.portrait(tenant)

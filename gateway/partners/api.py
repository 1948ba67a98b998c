"""Staff routes for partners (behind the gateway itself, `/api/v1/gateway/partners`): register
a partner (its key and secret are shown once), list, rotate the key, suspend and resume.
Only the role `admin` may manage partners."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BaseModel, ConfigDict, StringConstraints

from gateway.auth import Principal, PrincipalDep, PrincipalKind
from gateway.partners.registry import IssuedKey, Partner, PartnerRegistry, PartnerState
from servicekit.errors import Forbidden

router = APIRouter(
    prefix="/api/v1/gateway/partners",
    tags=["partners"],
    # Prefixed like every service's operations in the merged document.
    generate_unique_id_function=lambda route: f"gateway_{route.name}",
)
PartnerId = Annotated[str, Path(pattern=r"^ptn_[0-9a-f]{24}$")]
MANAGER_ROLE = "admin"


def _registry(request: Request) -> PartnerRegistry:
    return request.app.state.partners


def _manager(principal: PrincipalDep) -> Principal:
    if principal.kind != PrincipalKind.STAFF or MANAGER_ROLE not in principal.roles:
        raise Forbidden("only an admin may manage partners", code="role_required")
    return principal


RegistryDep = Annotated[PartnerRegistry, Depends(_registry)]
ManagerDep = Annotated[Principal, Depends(_manager)]


class NewPartner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def register_partner(
    body: NewPartner, manager: ManagerDep, registry: RegistryDep
) -> IssuedKey:
    """Register a partner of the caller's tenant. The secret is in this answer only."""
    return await registry.register(manager.tenant, body.name, by=manager.subject)


@router.get("")
async def list_partners(manager: ManagerDep, registry: RegistryDep) -> list[Partner]:
    return await registry.of_tenant(manager.tenant)


@router.post("/{partner_id}/rotate")
async def rotate_key(
    partner_id: PartnerId, manager: ManagerDep, registry: RegistryDep
) -> IssuedKey:
    """A new key and secret; requests signed with the old ones are refused from now on."""
    return await registry.rotate(manager.tenant, partner_id)


@router.post("/{partner_id}/suspend")
async def suspend_partner(
    partner_id: PartnerId, manager: ManagerDep, registry: RegistryDep
) -> Partner:
    return await registry.set_state(manager.tenant, partner_id, PartnerState.SUSPENDED)


@router.post("/{partner_id}/resume")
async def resume_partner(
    partner_id: PartnerId, manager: ManagerDep, registry: RegistryDep
) -> Partner:
    return await registry.set_state(manager.tenant, partner_id, PartnerState.ACTIVE)

"""A tenant's own providers per channel (its credentials, sealed at rest), falling back to
the deployment's; changing them takes the admin role."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import Response

from servicekit.context import Actor, ActorDep, TenantDep
from servicekit.errors import Forbidden, NotFound
from services.reach.api.deps import ReachDep
from services.reach.domain.channels import Channel
from services.reach.domain.provider_configs import ProviderConfig, ProviderView
from services.reach.service import tenant_providers

router = APIRouter(tags=["providers"])
ADMIN = "admin"


def _admin(actor: Actor) -> None:
    if not actor.has_role(ADMIN):
        raise Forbidden("only an admin may change the tenant's providers", code="admin_only")


@router.put("/providers/{channel}")
async def configure_provider(
    channel: Channel, body: ProviderConfig, tenant: TenantDep, actor: ActorDep, reach: ReachDep
) -> ProviderView:
    """Send this channel's messages through the tenant's own provider (`smtp`, `webhook`,
    `aliyun_sms`, or back to `sandbox` / `call_task`). Secrets are sealed and never shown
    again in full; an `aliyun_sms` config answers the delivery-report URL to set in
    Alibaba Cloud's console (its token is kept when the config is saved again)."""
    _admin(actor)
    doc = await tenant_providers.configure(reach.providers, tenant, channel, body, actor.id)
    return tenant_providers.view(reach.providers, doc, reach.settings.public_base_url, reveal=True)


@router.get("/providers")
async def list_providers(tenant: TenantDep, actor: ActorDep, reach: ReachDep) -> list[ProviderView]:
    """Each channel's provider: the tenant's own (secrets masked) or the deployment's."""
    return await tenant_providers.listing(
        reach.providers, tenant, reach.settings.public_base_url, reveal=actor.has_role(ADMIN)
    )


@router.delete("/providers/{channel}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_provider(
    channel: Channel, tenant: TenantDep, actor: ActorDep, reach: ReachDep
) -> Response:
    """Fall back to the deployment's provider for this channel."""
    _admin(actor)
    assert reach.providers.store is not None
    if not await reach.providers.store.remove(tenant, str(channel)):
        raise NotFound(f"no provider of the tenant's own for {channel}", code="provider_not_found")
    reach.providers.forget(tenant, channel)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

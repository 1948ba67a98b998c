"""The claim centre (领券中心): what a customer can claim now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from servicekit.context import TenantDep
from servicekit.runtime import RuntimeDep
from services.coupon.domain.batches import ID_PATTERN
from services.coupon.service import channels
from services.coupon.service.claim_centre import ClaimCentre, ClaimCentreView

router = APIRouter(tags=["claim centre"])


async def _centre(runtime: RuntimeDep) -> ClaimCentre:
    return channels.claim_centre(runtime)


@router.get("/claim-centre")
async def claim_centre(
    tenant: TenantDep,
    centre: Annotated[ClaimCentre, Depends(_centre)],
    customer_id: Annotated[str, Query(pattern=ID_PATTERN)],
) -> ClaimCentreView:
    """The batches open for claiming now that this customer's audience fits (campaign
    running, inside the claim window, listed in the claim centre): claimable ones first,
    then those the customer cannot claim now with the `reason` a claim would be refused
    with (limit_reached, daily_limit_reached, sold_out), for the page to show greyed out.
    Batches for new customers only are not shown to a returning customer."""
    return await centre.for_customer(tenant, customer_id)

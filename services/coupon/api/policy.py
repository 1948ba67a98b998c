"""The tenant's coupon policy: time zone (daily claim limits, usable hours) and margin
rules (the margin check of batches and of orders at checkout)."""

from __future__ import annotations

from fastapi import APIRouter

from servicekit.context import ActorDep, TenantDep
from servicekit.errors import Forbidden
from services.coupon.api.deps import PoliciesDep
from services.coupon.domain.policy import PolicyDraft, TenantPolicy

router = APIRouter(tags=["policy"])
#: Who may change a tenant's policy.
POLICY_EDITORS = ("admin", "budget_approver")


@router.get("/policy")
async def get_policy(tenant: TenantDep, policies: PoliciesDep) -> TenantPolicy:
    """The policy in force: the tenant's own (`own` true) or the service's defaults."""
    return await policies.of(tenant)


@router.put("/policy")
async def put_policy(
    body: PolicyDraft, tenant: TenantDep, actor: ActorDep, policies: PoliciesDep
) -> TenantPolicy:
    """Set the tenant's policy (roles admin or budget_approver): an IANA time zone and
    percents from 0 to 100. It applies at once on this replica and within
    `policy_cache_seconds` on the others; batches already approved keep their check."""
    if not actor.has_role(*POLICY_EDITORS):
        raise Forbidden(
            f"only {' or '.join(POLICY_EDITORS)} may change the policy", code="not_policy_editor"
        )
    return await policies.put(tenant, body, actor.id)

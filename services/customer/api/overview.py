"""Customer 360 route: profile, identities, consents, statistics, recent activity at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from servicekit.context import ActorDep, TenantDep
from servicekit.runtime import RuntimeDep
from services.customer.api.customers import CustomerId
from services.customer.api.schemas import CustomerView
from services.customer.domain.behaviour import BehaviourEvent
from services.customer.domain.change_log import ChangeLogEntry
from services.customer.domain.consent import Consent
from services.customer.domain.customer import Identity
from services.customer.domain.follow_ups import FollowUp
from services.customer.domain.orders import Order
from services.customer.domain.purchase_stats import PurchaseSummary
from services.customer.service.overview import OverviewService
from services.customer.store.behaviour import BehaviourStore
from services.customer.store.consents import ConsentStore
from services.customer.store.customers import CustomerStore
from services.customer.store.follow_ups import FollowUpStore
from services.customer.store.orders import OrderStore, PurchaseStatsStore

router = APIRouter(tags=["customers"])


async def overview_service(runtime: RuntimeDep) -> OverviewService:
    db = runtime.db
    return OverviewService(
        CustomerStore(db, runtime.state["vault"]),
        ConsentStore(db),
        BehaviourStore(db),
        OrderStore(db),
        PurchaseStatsStore(db),
        FollowUpStore(db),
    )


OverviewDep = Annotated[OverviewService, Depends(overview_service)]


class CustomerOverview(BaseModel):
    profile: CustomerView
    identities: list[Identity]
    #: Current state of every consent recorded; a pair never recorded is not allowed.
    consents: list[Consent]
    purchase_stats: PurchaseSummary | None
    #: The last 20, newest first.
    recent_behaviour: list[BehaviourEvent]
    #: The last 10, newest first.
    recent_orders: list[Order]
    #: Pending or sent reminders, soonest first.
    open_reminders: list[FollowUp]
    #: The last 10 change-log entries, newest first (personal data masked).
    recent_changes: list[ChangeLogEntry]


@router.get("/customers/{customer_id}/overview")
async def customer_overview(
    customer_id: CustomerId, tenant: TenantDep, actor: ActorDep, overview: OverviewDep
) -> CustomerOverview:
    """Customer 360 in one call; the profile is masked as the caller's role requires."""
    found = await overview.overview(tenant, customer_id)
    return CustomerOverview(
        profile=CustomerView.of(found.customer, actor),
        identities=found.customer.identities,
        **found.model_dump(exclude={"customer"}),
    )

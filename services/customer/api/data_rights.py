"""Data subject rights routes (PIPL / GDPR): export and erase a customer's data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from servicekit.context import ActorDep, TenantDep
from servicekit.runtime import RuntimeDep
from services.customer.api.customers import CustomerId
from services.customer.domain.data_rights import ErasureReceipt
from services.customer.service.data_rights import CustomerExport, DataRightsService
from services.customer.store.behaviour import BehaviourStore
from services.customer.store.consents import ConsentStore
from services.customer.store.customers import CustomerRecords
from services.customer.store.follow_ups import FollowUpStore
from services.customer.store.merges import MergeStore, RecordMover
from services.customer.store.orders import OrderStore, PurchaseStatsStore

router = APIRouter(tags=["data rights"])


async def data_rights_service(runtime: RuntimeDep) -> DataRightsService:
    db = runtime.db
    customers = CustomerRecords(db, runtime.state["vault"])
    stores = (
        ConsentStore(db),
        BehaviourStore(db),
        OrderStore(db),
        PurchaseStatsStore(db),
        FollowUpStore(db),
    )
    return DataRightsService(
        runtime.uow, customers, MergeStore(db, customers), RecordMover(db), stores
    )


DataRightsDep = Annotated[DataRightsService, Depends(data_rights_service)]


@router.get("/customers/{customer_id}/export")
async def export_customer(
    customer_id: CustomerId, tenant: TenantDep, actor: ActorDep, rights: DataRightsDep
) -> CustomerExport:
    """Everything held about the customer, personal data in clear (role `admin` or `dpo`):
    profile, identities, consents with history, behaviour, orders, statistics, follow-ups,
    change log and merges."""
    return await rights.export(tenant, customer_id, actor=actor)


@router.post("/customers/{customer_id}/erase")
async def erase_customer(
    customer_id: CustomerId, tenant: TenantDep, actor: ActorDep, rights: DataRightsDep
) -> ErasureReceipt:
    """Erase the customer at their request (role `admin` or `dpo`); publishes
    `customer.erased.v1`. Erasing again answers the same receipt."""
    return await rights.erase(tenant, customer_id, actor=actor)

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, ConfigDict, StringConstraints

from servicekit.context import TenantDep
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep
from services.customer.domain.customer import Customer, SourceChannel
from services.customer.service.profiles import CustomerService
from services.customer.store import CustomerStore

router = APIRouter(prefix="/customers", tags=["customers"])
CustomerId = Annotated[str, Path(pattern=r"^cus_[0-9a-f]{32}$")]


def _service(runtime: RuntimeDep) -> CustomerService:
    return CustomerService(runtime.uow, CustomerStore(runtime.db))


CustomersDep = Annotated[CustomerService, Depends(_service)]


class RegisterCustomer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
    ]
    source_channel: SourceChannel


@router.post("", status_code=status.HTTP_201_CREATED)
async def register_customer(
    body: RegisterCustomer, tenant: TenantDep, customers: CustomersDep
) -> Customer:
    """Create a customer profile; publishes `customer.registered.v1`."""
    return await customers.register(
        tenant, display_name=body.display_name, source_channel=body.source_channel
    )


@router.get("/{customer_id}")
async def get_customer(
    customer_id: CustomerId, tenant: TenantDep, customers: CustomersDep
) -> Customer:
    return await customers.get(tenant, customer_id)


@router.get("")
async def list_customers(
    tenant: TenantDep, customers: CustomersDep, page: PageRequestDep
) -> Page[Customer]:
    items, cursor = await customers.page(tenant, page)
    return Page(items=items, next_cursor=cursor)

"""Profile routes: register, read, search, update, stage, owner, identities, change log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status

from servicekit.context import ActorDep, TenantDep
from servicekit.errors import InvalidInput
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep
from services.customer.api.schemas import (
    AssignOwner,
    ChangeStage,
    CustomerView,
    RegisterCustomer,
    UpdateCustomer,
)
from services.customer.domain.change_log import ChangeLogEntry
from services.customer.domain.customer import (
    Identity,
    IdentityKind,
    LifecycleStage,
    SourceChannel,
)
from services.customer.domain.personal_data import normalize_email, normalize_mobile
from services.customer.service.profiles import CustomerService
from services.customer.store.custom_fields import CustomFieldStore
from services.customer.store.customers import CustomerStore

router = APIRouter(tags=["customers"])
CustomerId = Annotated[str, Path(pattern=r"^cus_[0-9a-f]{32}$")]
IdentityValue = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-.:@]{1,128}$")]


async def customer_service(runtime: RuntimeDep) -> CustomerService:
    store = CustomerStore(runtime.db, runtime.state["vault"])
    return CustomerService(runtime.uow, store, CustomFieldStore(runtime.db))


CustomersDep = Annotated[CustomerService, Depends(customer_service)]


@router.post("/customers", status_code=status.HTTP_201_CREATED)
async def register_customer(
    body: RegisterCustomer, tenant: TenantDep, actor: ActorDep, customers: CustomersDep
) -> CustomerView:
    """Create a customer profile; publishes `customer.registered.v1`. A mobile or external
    identity another customer of the tenant has is a 409."""
    fields = body.model_dump(exclude={"display_name", "source_channel"})
    customer = await customers.register(
        tenant,
        display_name=body.display_name,
        source_channel=body.source_channel,
        actor=actor,
        **fields,
    )
    return CustomerView.of(customer, actor)


@router.get("/customers")
async def search_customers(
    request: Request,
    tenant: TenantDep,
    actor: ActorDep,
    customers: CustomersDep,
    page: PageRequestDep,
    mobile: Annotated[str | None, Query(max_length=32)] = None,
    email: Annotated[str | None, Query(max_length=254)] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    stage: LifecycleStage | None = None,
    owner_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:@-]{1,64}$")] = None,
    source_channel: SourceChannel | None = None,
    registered_from: datetime | None = None,
    registered_to: datetime | None = None,
) -> Page[CustomerView]:
    """Search by exact mobile or email, name prefix, stage, owner, channel, registration
    time, and searchable custom fields as `cf.<key>=<value>`."""
    items, cursor = await customers.search(
        tenant,
        page,
        mobile=normalize_mobile(mobile, field="mobile") if mobile else None,
        email=normalize_email(email, field="email") if email else None,
        name=name,
        lifecycle_stage=stage,
        owner_id=owner_id,
        source_channel=source_channel,
        registered_from=registered_from,
        registered_to=registered_to,
        custom_fields=_custom_field_query(request),
    )
    return Page(items=[CustomerView.of(c, actor) for c in items], next_cursor=cursor)


def _custom_field_query(request: Request) -> dict[str, str]:
    filters = {}
    for key, value in request.query_params.multi_items():
        if key.startswith("cf."):
            if len(value) > 200:
                raise InvalidInput("at most 200 characters", field=key)
            filters[key[3:]] = value
    return filters


@router.get("/customers/by-identity/{kind}/{value}")
async def find_by_identity(
    kind: IdentityKind,
    value: IdentityValue,
    tenant: TenantDep,
    actor: ActorDep,
    customers: CustomersDep,
) -> CustomerView:
    """The customer who has this external identity (openid, union id, app user, member no)."""
    customer = await customers.by_identity(tenant, Identity(kind=kind, value=value))
    return CustomerView.of(customer, actor)


@router.get("/customers/{customer_id}")
async def get_customer(
    customer_id: CustomerId, tenant: TenantDep, actor: ActorDep, customers: CustomersDep
) -> CustomerView:
    return CustomerView.of(await customers.get(tenant, customer_id), actor)


@router.patch("/customers/{customer_id}")
async def update_customer(
    customer_id: CustomerId,
    body: UpdateCustomer,
    tenant: TenantDep,
    actor: ActorDep,
    customers: CustomersDep,
) -> CustomerView:
    """Change the fields sent; publishes `customer.profile_changed.v1` naming them."""
    customer = await customers.update(tenant, customer_id, body.changes(), actor=actor)
    return CustomerView.of(customer, actor)


@router.post("/customers/{customer_id}/stage")
async def change_stage(
    customer_id: CustomerId,
    body: ChangeStage,
    tenant: TenantDep,
    actor: ActorDep,
    customers: CustomersDep,
) -> CustomerView:
    """Move the customer to another lifecycle stage, with the reason kept in the history."""
    customer = await customers.change_stage(
        tenant, customer_id, body.to_stage, reason=body.reason, actor=actor
    )
    return CustomerView.of(customer, actor)


@router.post("/customers/{customer_id}/owner")
async def assign_owner(
    customer_id: CustomerId,
    body: AssignOwner,
    tenant: TenantDep,
    actor: ActorDep,
    customers: CustomersDep,
) -> CustomerView:
    """Make a staff member (or nobody) responsible for the customer (客户归属)."""
    customer = await customers.assign_owner(
        tenant, customer_id, body.owner_id, reason=body.reason, actor=actor
    )
    return CustomerView.of(customer, actor)


@router.post("/customers/{customer_id}/identities", status_code=status.HTTP_201_CREATED)
async def add_identity(
    customer_id: CustomerId,
    body: Identity,
    tenant: TenantDep,
    actor: ActorDep,
    customers: CustomersDep,
) -> CustomerView:
    customer = await customers.add_identity(tenant, customer_id, body, actor=actor)
    return CustomerView.of(customer, actor)


@router.delete("/customers/{customer_id}/identities/{kind}/{value}")
async def remove_identity(
    customer_id: CustomerId,
    kind: IdentityKind,
    value: IdentityValue,
    tenant: TenantDep,
    actor: ActorDep,
    customers: CustomersDep,
) -> CustomerView:
    identity = Identity(kind=kind, value=value)
    customer = await customers.remove_identity(tenant, customer_id, identity, actor=actor)
    return CustomerView.of(customer, actor)


@router.get("/customers/{customer_id}/change-log")
async def change_log(
    customer_id: CustomerId, tenant: TenantDep, customers: CustomersDep, page: PageRequestDep
) -> Page[ChangeLogEntry]:
    """Who changed what and when (客户变更记录), newest first; personal data masked."""
    await customers.get(tenant, customer_id)
    items, cursor = await customers.store.change_log(tenant, customer_id, page)
    return Page(items=items, next_cursor=cursor)

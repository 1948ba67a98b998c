"""Custom field definitions (自定义资料项) of the tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from servicekit.context import TenantDep
from servicekit.errors import DomainError
from servicekit.runtime import RuntimeDep
from services.customer.domain.custom_fields import MAX_FIELDS_PER_TENANT, FieldDefinition
from services.customer.store.custom_fields import CustomFieldStore

router = APIRouter(tags=["custom fields"])


async def _store(runtime: RuntimeDep) -> CustomFieldStore:
    return CustomFieldStore(runtime.db)


FieldsDep = Annotated[CustomFieldStore, Depends(_store)]


@router.post("/custom-fields", status_code=status.HTTP_201_CREATED)
async def define_field(
    body: FieldDefinition, tenant: TenantDep, fields: FieldsDep
) -> FieldDefinition:
    """Define a profile attribute; values are validated against it on every write. A
    searchable field can be used as `cf.<key>=` in the customer search."""
    if await fields.count(tenant) >= MAX_FIELDS_PER_TENANT:
        raise DomainError(
            f"a tenant has at most {MAX_FIELDS_PER_TENANT} custom fields", code="too_many_fields"
        )
    await fields.add(tenant, body)
    return body


@router.get("/custom-fields")
async def list_fields(tenant: TenantDep, fields: FieldsDep) -> list[FieldDefinition]:
    return list((await fields.definitions(tenant)).values())

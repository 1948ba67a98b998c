"""Custom field definitions per tenant; a searchable field gets an index of its own."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.errors import Conflict
from servicekit.mongo import Document, Index
from services.customer.domain.custom_fields import FieldDefinition
from services.customer.store.customers import CUSTOMERS

FIELDS = "custom_field_definitions"
INDEXES = [Index(FIELDS, [("tenant", 1), ("key", 1)], unique=True, name="by_key")]


class CustomFieldStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._fields = db[FIELDS]
        self._customers = db[CUSTOMERS]

    async def definitions(self, tenant: str) -> dict[str, FieldDefinition]:
        docs = await self._fields.find({"tenant": tenant}).sort("key", 1).to_list()
        return {d["key"]: FieldDefinition.model_validate(d) for d in docs}

    async def count(self, tenant: str) -> int:
        return await self._fields.count_documents({"tenant": tenant})

    async def add(self, tenant: str, definition: FieldDefinition) -> None:
        try:
            await self._fields.insert_one({"tenant": tenant, **definition.model_dump()})
        except DuplicateKeyError:
            raise Conflict(
                f"a custom field {definition.key!r} exists", code="field_exists", field="key"
            ) from None
        if definition.searchable:
            await self._customers.create_index(
                [("tenant", 1), (f"custom_fields.{definition.key}", 1)],
                name=f"cf_{definition.key}",
            )

    async def replace(self, tenant: str, definition: FieldDefinition) -> None:
        await self._fields.replace_one(
            {"tenant": tenant, "key": definition.key}, {"tenant": tenant, **definition.model_dump()}
        )

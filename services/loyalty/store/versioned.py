"""One document per aggregate, saved only over the version it was read at."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from servicekit.mongo import Document
from services.loyalty.store.races import WriteRaced

M = TypeVar("M", bound=BaseModel)


class VersionedStore(Generic[M]):
    """Documents keyed `tenant:key`; `save` inserts version 1 or replaces the version read
    (a writer that got there first makes it raise: duplicate key or `WriteRaced`)."""

    model: type[M]

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._docs = collection

    async def load(
        self, tenant: str, key: str, *, session: AsyncClientSession | None = None
    ) -> M | None:
        doc = await self._docs.find_one({"_id": f"{tenant}:{key}"}, session=session)
        return self.model.model_validate(doc) if doc else None

    async def save(
        self, tenant: str, key: str, item: M, session: AsyncClientSession, **extra: Any
    ) -> M:
        version: int = item.version  # type: ignore[attr-defined]
        saved = item.model_copy(update={"version": version + 1})
        doc = {"_id": f"{tenant}:{key}", "tenant": tenant, **saved.model_dump(), **extra}
        if version == 0:
            try:
                await self._docs.insert_one(doc, session=session)
            except DuplicateKeyError:
                raise WriteRaced(f"{self._docs.name} {key} was created meanwhile") from None
            return saved
        result = await self._docs.replace_one(
            {"_id": doc["_id"], "version": version}, doc, session=session
        )
        if result.matched_count != 1:
            raise WriteRaced(f"{self._docs.name} {key} changed meanwhile")
        return saved

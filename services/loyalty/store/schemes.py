"""A tenant's rules (earning rule, tier scheme, top-up offers), one document each."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.clock import utcnow
from servicekit.mongo import Document

SCHEMES = "schemes"
M = TypeVar("M", bound=BaseModel)


class SchemeStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._schemes = db[SCHEMES]

    async def get(
        self,
        tenant: str,
        model: type[M],
        *,
        session: AsyncClientSession | None = None,
    ) -> M | None:
        doc = await self._schemes.find_one({"_id": _key(tenant, model)}, session=session)
        return model.model_validate(doc["rule"]) if doc else None

    async def put(self, tenant: str, rule: BaseModel, *, changed_by: str) -> None:
        await self._schemes.replace_one(
            {"_id": _key(tenant, type(rule))},
            {"rule": rule.model_dump(mode="python"), "changed_by": changed_by, "at": utcnow()},
            upsert=True,
        )


def _key(tenant: str, model: type[BaseModel]) -> str:
    return f"{tenant}:{model.__name__}"

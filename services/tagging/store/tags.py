"""Tag categories and tags at rest: one document per (tenant, id)."""

from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.errors import Conflict
from servicekit.mongo import Document, Index
from services.tagging.domain.tags import Category, Tag, TagState

CATEGORIES = "tag_categories"
TAGS = "tags"
INDEXES = [
    Index(CATEGORIES, [("tenant", 1), ("order", 1), ("category_id", 1)], name="by_order"),
    Index(TAGS, [("tenant", 1), ("tag_id", 1)], name="by_tenant"),
]


def _key(tenant: str, id_: str) -> str:
    return f"{tenant}:{id_}"


class CategoryStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._categories = db[CATEGORIES]

    async def add(self, category: Category, session: AsyncClientSession | None = None) -> None:
        doc = {"_id": _key(category.tenant, category.category_id), **category.model_dump()}
        try:
            await self._categories.insert_one(doc, session=session)
        except DuplicateKeyError:
            raise Conflict(
                f"category {category.category_id} exists", code="category_exists"
            ) from None

    async def replace(self, category: Category) -> None:
        key = _key(category.tenant, category.category_id)
        await self._categories.replace_one({"_id": key}, category.model_dump())

    async def get(self, tenant: str, category_id: str) -> Category | None:
        doc = await self._categories.find_one({"_id": _key(tenant, category_id)})
        return Category.model_validate(doc) if doc else None

    async def all(self, tenant: str) -> list[Category]:
        cursor = self._categories.find({"tenant": tenant}).sort([("order", 1), ("category_id", 1)])
        return [Category.model_validate(d) for d in await cursor.to_list()]

    async def delete(self, tenant: str, category_id: str) -> bool:
        outcome = await self._categories.delete_one({"_id": _key(tenant, category_id)})
        return outcome.deleted_count == 1

    async def has_children(self, tenant: str, category_id: str) -> bool:
        return (
            await self._categories.find_one({"tenant": tenant, "parent": category_id}) is not None
        )


class TagStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._tags = db[TAGS]

    async def add(self, tag: Tag, session: AsyncClientSession | None = None) -> None:
        try:
            await self._tags.insert_one(_doc(tag), session=session)
        except DuplicateKeyError:
            raise Conflict(f"tag {tag.tag_id} exists", code="tag_exists") from None

    async def replace(self, tag: Tag) -> None:
        await self._tags.replace_one({"_id": _key(tag.tenant, tag.tag_id)}, _doc(tag))

    async def get(
        self, tenant: str, tag_id: str, *, session: AsyncClientSession | None = None
    ) -> Tag | None:
        doc = await self._tags.find_one({"_id": _key(tenant, tag_id)}, session=session)
        return Tag.model_validate(doc) if doc else None

    async def all(self, tenant: str, *, state: TagState | None = None) -> list[Tag]:
        query: Document = {"tenant": tenant}
        if state is not None:
            query["state"] = str(state)
        docs = await self._tags.find(query).sort("tag_id", 1).to_list()
        return [Tag.model_validate(d) for d in docs]

    async def in_category(self, tenant: str, category_id: str) -> bool:
        return await self._tags.find_one({"tenant": tenant, "category": category_id}) is not None


def _doc(tag: Tag) -> Document:
    return {"_id": _key(tag.tenant, tag.tag_id), **tag.model_dump(mode="json")}

"""Use cases of tag metadata: categories, tags, archive, templates; and manual tagging."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from servicekit.clock import utcnow
from servicekit.errors import Conflict, InvalidInput, NotFound
from servicekit.unit_of_work import Tx, UnitOfWork
from services.tagging.domain.tags import (
    TEMPLATES,
    Assignment,
    Category,
    Source,
    Tag,
    TagState,
    TagValue,
    check_assignable,
    check_category_parent,
    check_expiry,
    check_tag_shape,
    check_value,
    check_value_kind_change,
)
from services.tagging.service.assignments import assign_tag, remove_tag
from services.tagging.store.assignments import AssignmentStore
from services.tagging.store.tags import CategoryStore, TagStore


class TagService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.categories = CategoryStore(uow.db)
        self.tags = TagStore(uow.db)
        self.assignments = AssignmentStore(uow.db)

    # --- categories --------------------------------------------------------------------

    async def save_category(self, category: Category, *, create: bool) -> Category:
        if category.parent == category.category_id:
            raise InvalidInput("a category cannot be its own parent", field="parent")
        parent = (
            await self.categories.get(category.tenant, category.parent) if category.parent else None
        )
        check_category_parent(parent, parent_id=category.parent)
        if create:
            await self.categories.add(category)
            return category
        await self._category(category.tenant, category.category_id)
        if category.parent and await self.categories.has_children(
            category.tenant, category.category_id
        ):
            raise InvalidInput("a category with children cannot get a parent", field="parent")
        await self.categories.replace(category)
        return category

    async def delete_category(self, tenant: str, category_id: str) -> None:
        await self._category(tenant, category_id)
        if await self.tags.in_category(tenant, category_id) or await self.categories.has_children(
            tenant, category_id
        ):
            raise Conflict("the category still holds tags or categories", code="category_in_use")
        await self.categories.delete(tenant, category_id)

    async def _category(self, tenant: str, category_id: str) -> Category:
        category = await self.categories.get(tenant, category_id)
        if category is None:
            raise NotFound(f"no category {category_id}", code="category_not_found")
        return category

    # --- tags ----------------------------------------------------------------------------

    async def create_tag(self, tag: Tag) -> Tag:
        await self._check_tag(tag)
        await self.tags.add(tag)
        return tag

    async def update_tag(self, tag: Tag) -> Tag:
        old = await self.tag(tag.tenant, tag.tag_id)
        await self._check_tag(tag)
        in_use = await self.assignments.in_use(tag.tenant, tag.tag_id)
        check_value_kind_change(old, tag, in_use=in_use)
        tag = tag.model_copy(update={"state": old.state})
        await self.tags.replace(tag)
        return tag

    async def archive_tag(self, tenant: str, tag_id: str) -> Tag:
        """Archived: its assignments stay readable, new ones are refused."""
        tag = (await self.tag(tenant, tag_id)).model_copy(update={"state": TagState.ARCHIVED})
        await self.tags.replace(tag)
        return tag

    async def tag(self, tenant: str, tag_id: str) -> Tag:
        tag = await self.tags.get(tenant, tag_id)
        if tag is None:
            raise NotFound(f"no tag {tag_id}", code="tag_not_found")
        return tag

    async def _check_tag(self, tag: Tag) -> None:
        check_tag_shape(tag)
        if await self.categories.get(tag.tenant, tag.category) is None:
            raise InvalidInput(
                f"no category {tag.category}", field="category", code="unknown_category"
            )

    # --- templates -----------------------------------------------------------------------

    async def apply_template(self, tenant: str, template_id: str) -> dict[str, list[str]]:
        """Create the template's categories and tags; existing ones are skipped, so applying
        twice is harmless."""
        template = TEMPLATES.get(template_id)
        if template is None:
            raise NotFound(f"no template {template_id}", code="template_not_found")
        report: dict[str, list[str]] = {"created": [], "skipped": []}
        for c in template.categories:
            done = await self.categories.get(tenant, c.category_id) is None
            if done:
                await self.categories.add(Category(tenant=tenant, order=0, **c.model_dump()))
            report["created" if done else "skipped"].append(f"category:{c.category_id}")
        for t in template.tags:
            done = await self.tags.get(tenant, t.tag_id) is None
            if done:
                await self.tags.add(Tag(tenant=tenant, **t.model_dump()))
            report["created" if done else "skipped"].append(f"tag:{t.tag_id}")
        return report

    # --- manual tagging ------------------------------------------------------------------

    async def tag_customer(
        self,
        tenant: str,
        customer_id: str,
        tag_id: str,
        *,
        value: TagValue,
        expires_at: datetime | None,
        by: str,
    ) -> Assignment:
        now = utcnow()
        tag = check_assignable(await self.tags.get(tenant, tag_id), tag_id)
        value = check_value(tag, value)
        check_expiry(expires_at, now)
        expires_at = expires_at or tag.expiry.expires_at(now)
        await self._known(tenant, customer_id)

        async def work(tx: Tx) -> None:
            await assign_tag(
                tx,
                tenant=tenant,
                customer_id=customer_id,
                tag_id=tag_id,
                value=value,
                source=Source.MANUAL,
                by=by,
                expires_at=expires_at,
                now=now,
            )

        await self.uow.run(work)
        assignment = await self.assignments.get(tenant, customer_id, tag_id)
        assert assignment is not None
        return assignment

    async def untag_customer(self, tenant: str, customer_id: str, tag_id: str, by: str) -> None:
        async def work(tx: Tx) -> bool:
            return await remove_tag(
                tx, tenant=tenant, customer_id=customer_id, tag_id=tag_id, reason="untagged", by=by
            )

        if not await self.uow.run(work):
            raise NotFound(f"the customer has no tag {tag_id}", code="assignment_not_found")

    async def customer_tags(self, tenant: str, customer_id: str) -> list[Assignment]:
        now = utcnow()
        return [a for a in await self.assignments.of_customer(tenant, customer_id) if a.active(now)]

    async def _known(self, tenant: str, customer_id: str) -> None:
        if not await self.assignments.known_customers(tenant, [customer_id]):
            raise NotFound(f"tagging knows no customer {customer_id}", code="customer_not_found")


def template_summaries() -> list[dict[str, Any]]:
    return [t.model_dump() for t in TEMPLATES.values()]

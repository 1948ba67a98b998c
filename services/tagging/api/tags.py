"""Tag metadata routes: categories, tags, archive, templates."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from servicekit.context import TenantDep
from servicekit.runtime import RuntimeDep
from services.tagging.domain.rules.catalogue import TagValueKind
from services.tagging.domain.tags import Category, ExpiryPolicy, Tag, TagKind
from services.tagging.service.tags import TagService, template_summaries
from services.tagging.store.tags import CategoryStore, TagStore

router = APIRouter(tags=["tags"])

SlugPattern = r"^[a-z][a-z0-9_-]{1,62}$"
Slug = Annotated[str, StringConstraints(pattern=SlugPattern)]
SlugPath = Annotated[str, Path(pattern=SlugPattern)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
StaffId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@-]{1,64}$")]
Option = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CategoryBody(Strict):
    name: Name
    parent: Slug | None = None
    order: int = Field(default=0, ge=0, le=10_000)


class NewCategory(CategoryBody):
    category_id: Slug


class ExpiryBody(Strict):
    kind: Literal["none", "after_days", "fixed_date"] = "none"
    days: int | None = Field(default=None, ge=1, le=3650)
    on: date | None = None


class TagBody(Strict):
    name: Name
    category: Slug
    kind: TagKind = TagKind.BUSINESS_TAG
    value_kind: TagValueKind = TagValueKind.FLAG
    options: Annotated[list[Option], Field(max_length=100)] = Field(default_factory=list)
    unit: Annotated[str, StringConstraints(max_length=20)] | None = None
    min: float | None = None
    max: float | None = None
    scope: Literal["all"] | Annotated[list[StaffId], Field(min_length=1, max_length=500)] = "all"
    owner: StaffId | None = None
    expiry: ExpiryBody = Field(default_factory=ExpiryBody)
    description: Annotated[str, StringConstraints(max_length=500)] = ""

    def tag(self, tenant: str, tag_id: str) -> Tag:
        fields = self.model_dump(exclude={"expiry", "tag_id"})
        return Tag(
            tenant=tenant, tag_id=tag_id, expiry=ExpiryPolicy(**self.expiry.model_dump()), **fields
        )


class NewTag(TagBody):
    tag_id: Slug


async def _service(runtime: RuntimeDep) -> TagService:
    return TagService(runtime.uow)


ServiceDep = Annotated[TagService, Depends(_service)]


@router.post("/tag-categories", status_code=status.HTTP_201_CREATED)
async def create_category(body: NewCategory, tenant: TenantDep, tags: ServiceDep) -> Category:
    """A category (标签分类); `parent` nests it one level under another."""
    category = Category(tenant=tenant, **body.model_dump())
    return await tags.save_category(category, create=True)


@router.get("/tag-categories")
async def list_categories(tenant: TenantDep, runtime: RuntimeDep) -> list[Category]:
    return await CategoryStore(runtime.db).all(tenant)


@router.put("/tag-categories/{category_id}")
async def update_category(
    category_id: SlugPath, body: CategoryBody, tenant: TenantDep, tags: ServiceDep
) -> Category:
    category = Category(tenant=tenant, category_id=category_id, **body.model_dump())
    return await tags.save_category(category, create=False)


@router.delete("/tag-categories/{category_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_category(category_id: SlugPath, tenant: TenantDep, tags: ServiceDep) -> None:
    """Only an empty category (no tags, no children) can go."""
    await tags.delete_category(tenant, category_id)


@router.post("/tags", status_code=status.HTTP_201_CREATED)
async def create_tag(body: NewTag, tenant: TenantDep, tags: ServiceDep) -> Tag:
    """A tag (标签元数据): an attribute label or a business tag, flag / enum / number."""
    return await tags.create_tag(body.tag(tenant, body.tag_id))


@router.get("/tags")
async def list_tags(tenant: TenantDep, runtime: RuntimeDep) -> list[Tag]:
    return await TagStore(runtime.db).all(tenant)


@router.get("/tags/{tag_id}")
async def get_tag(tag_id: SlugPath, tenant: TenantDep, tags: ServiceDep) -> Tag:
    return await tags.tag(tenant, tag_id)


@router.put("/tags/{tag_id}")
async def update_tag(tag_id: SlugPath, body: TagBody, tenant: TenantDep, tags: ServiceDep) -> Tag:
    """Replace the tag's definition; its value kind cannot change while customers have it (409)."""
    return await tags.update_tag(body.tag(tenant, tag_id))


@router.post("/tags/{tag_id}/archive")
async def archive_tag(tag_id: SlugPath, tenant: TenantDep, tags: ServiceDep) -> Tag:
    """Assignments stay readable; new ones are refused (409 `tag_archived`)."""
    return await tags.archive_tag(tenant, tag_id)


@router.get("/tag-templates")
async def list_templates() -> list[dict[str, Any]]:
    """The built-in tag templates (标签模板)."""
    return template_summaries()


@router.post("/tag-templates/{template_id}/apply")
async def apply_template(
    template_id: SlugPath, tenant: TenantDep, tags: ServiceDep
) -> dict[str, list[str]]:
    """Create the template's categories and tags; those that exist are skipped and listed."""
    return await tags.apply_template(tenant, template_id)

"""Templates: create, revise (a new version), read a version, preview with a sample customer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from servicekit.context import ActorDep, TenantDep
from services.reach.api.deps import ID, ReachDep, TemplateId
from services.reach.domain.channels import Channel
from services.reach.domain.templates import VARIABLES, Content, Template
from services.reach.service.templates import Preview

router = APIRouter(tags=["templates"])
Defaults = dict[
    Annotated[str, Field(pattern=r"^[a-z_]{1,30}$")], Annotated[str, Field(max_length=200)]
]


class NewTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(pattern=ID)
    channel: Channel
    name: str = Field(min_length=1, max_length=100)
    content: Content
    defaults: Defaults = Field(default_factory=dict, max_length=20)


class TemplateRevision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    content: Content
    defaults: Defaults = Field(default_factory=dict, max_length=20)


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=1)
    variables: dict[
        Annotated[str, Field(pattern=r"^[a-z_]{1,30}$")], Annotated[str, Field(max_length=200)]
    ] = Field(default_factory=dict, max_length=20)


@router.get("/template-variables")
async def template_variables() -> dict[str, int]:
    """The variables a template may use, with the longest value each may take."""
    return VARIABLES


@router.post("/templates", status_code=status.HTTP_201_CREATED)
async def create_template(
    body: NewTemplate, tenant: TenantDep, actor: ActorDep, reach: ReachDep
) -> Template:
    """Version 1 of a template, validated against its channel's limits with every variable
    at its longest (SMS length and signature, subscription-message field limits...)."""
    return await reach.template_service.create(
        tenant,
        body.template_id,
        channel=body.channel,
        name=body.name,
        content=body.content,
        defaults=body.defaults,
        by=actor.id,
    )


@router.put("/templates/{template_id}")
async def revise_template(
    template_id: TemplateId,
    body: TemplateRevision,
    tenant: TenantDep,
    actor: ActorDep,
    reach: ReachDep,
) -> Template:
    """A new version; campaigns and rules pinned to an earlier one keep sending it."""
    return await reach.template_service.revise(
        tenant,
        template_id,
        name=body.name,
        content=body.content,
        defaults=body.defaults,
        by=actor.id,
    )


@router.get("/templates")
async def list_templates(tenant: TenantDep, reach: ReachDep) -> list[Template]:
    return await reach.templates.listing(tenant)


@router.get("/templates/{template_id}")
async def get_template(
    template_id: TemplateId,
    tenant: TenantDep,
    reach: ReachDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Template:
    """The latest version, or the one asked for."""
    return await reach.template_service.get(tenant, template_id, version)


@router.get("/templates/{template_id}/versions")
async def template_versions(
    template_id: TemplateId, tenant: TenantDep, reach: ReachDep
) -> list[Template]:
    await reach.template_service.get(tenant, template_id)
    return await reach.templates.versions(tenant, template_id)


@router.post("/templates/{template_id}/preview")
async def preview_template(
    template_id: TemplateId, body: PreviewRequest, tenant: TenantDep, reach: ReachDep
) -> Preview:
    """The template filled in: with the variables given, a sample customer for the rest."""
    return await reach.template_service.preview(tenant, template_id, body.version, body.variables)

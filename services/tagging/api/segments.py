"""Segment routes (人群圈选): rules over attributes, tags, statistics, behaviour and other
segments; size estimates while editing, builds with snapshots, live members, CSV export,
portraits and templates."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from servicekit.context import ActorDep, TenantDep
from servicekit.errors import NotFound
from servicekit.jobs import Job
from servicekit.pagination import Page, PageRequestDep, page_of
from servicekit.runtime import Runtime, RuntimeDep
from services.tagging.domain.rules.ast import rule_to_json
from services.tagging.domain.rules.describe import describe
from services.tagging.domain.segment_templates import SegmentTemplate, TemplateParameter
from services.tagging.domain.segments import LastBuild, Segment
from services.tagging.service.segment_audience import Estimate, Portrait, SegmentAudience
from services.tagging.service.segment_builds import request_build
from services.tagging.service.segments import SegmentDraft, SegmentService
from services.tagging.settings import TaggingSettings
from services.tagging.store.memberships import MembershipStore
from services.tagging.store.snapshots import Snapshot, SnapshotStore

router = APIRouter(tags=["segments"])
SegmentId = Annotated[str, Path(pattern=r"^seg_[0-9a-f]{32}$")]
SnapshotId = Annotated[str, Path(pattern=r"^snp_[0-9A-Za-z_-]{1,64}$")]
TemplateId = Annotated[str, Path(pattern=r"^tpl_[0-9a-f]{32}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Description = Annotated[str, StringConstraints(max_length=500)]
#: The rule language's JSON; checked by the rule language, so every problem comes back at
#: once with its path (`rule.children.1.op`).
RuleJson = dict[str, Any]
CSV_PAGE = 5_000
SNAPSHOTS_LISTED = 50


async def _segments(runtime: RuntimeDep) -> SegmentService:
    settings = runtime.settings
    interval = (
        settings.segment_refresh_interval_seconds
        if isinstance(settings, TaggingSettings)
        else 3600.0
    )
    return SegmentService(runtime.uow, refresh_interval_seconds=interval)


SegmentsDep = Annotated[SegmentService, Depends(_segments)]


class NewSegment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description = ""
    rule: RuleJson | None = None
    #: Instead of `rule`: a template (built-in `builtin.*` or the tenant's `tpl_*`) and values
    #: for its parameters (defaults fill the rest).
    template_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    parameters: dict[str, int | str] = Field(default_factory=dict)


class SegmentChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = None
    rule: RuleJson | None = None


class RuleToEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: RuleJson


class SegmentView(BaseModel):
    segment_id: str
    name: str
    description: str
    rule: dict[str, Any]
    #: The rule in words, for the console.
    summary: str
    time_based: bool
    template_id: str | None
    version: int
    last_build: LastBuild | None
    #: The build job this change started, if it started one.
    build_job_id: str | None = None
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime

    @classmethod
    def of(cls, segment: Segment, *, build: Job | None = None) -> SegmentView:
        return cls(
            **segment.model_dump(exclude={"rule", "tenant"}),
            rule=rule_to_json(segment.rule),
            summary=describe(segment.rule),
            build_job_id=build.id if build else None,
        )


class MemberView(BaseModel):
    customer_id: str
    joined_at: datetime


class NewTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description = ""
    category: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")] = "general"
    #: The rule's JSON, with `"${name}"` wherever a parameter's value goes.
    rule: RuleJson
    #: Each with a default: the template is validated with its defaults.
    parameters: list[TemplateParameter] = Field(default_factory=list, max_length=20)


@router.post("/segments", status_code=status.HTTP_201_CREATED)
async def create_segment(
    body: NewSegment,
    tenant: TenantDep,
    actor: ActorDep,
    segments: SegmentsDep,
    runtime: RuntimeDep,
) -> SegmentView:
    """Create a segment from a rule or a template. The rule is validated against the tenant's
    fields, tags and segments (no cycles), with every problem listed by path. A build starts
    at once (`build_job_id`); events keep the membership current from then on."""
    segment = await segments.create(tenant, SegmentDraft(**body.model_dump()), by=actor.id)
    job = await request_build(runtime, segment, by=actor.id)
    return SegmentView.of(segment, build=job)


@router.get("/segments")
async def list_segments(
    tenant: TenantDep, segments: SegmentsDep, page: PageRequestDep
) -> Page[SegmentView]:
    after = page.after_value("segment_id") if page.after else None
    found = await segments.page(tenant, after=after, limit=page.limit + 1)
    views = [SegmentView.of(s) for s in found]
    return page_of(views, page.limit, lambda s: {"segment_id": s.segment_id})


@router.post("/segments/estimate")
async def estimate_rule(
    body: RuleToEstimate, tenant: TenantDep, segments: SegmentsDep, runtime: RuntimeDep
) -> Estimate:
    """How many customers a rule selects now, before it is saved or built: answered from the
    in-memory audience engine in milliseconds."""
    rule = await segments.checked_rule(tenant, body.rule)
    return await SegmentAudience(runtime).estimate(tenant, rule)


@router.get("/segments/{segment_id}")
async def get_segment(
    segment_id: SegmentId, tenant: TenantDep, segments: SegmentsDep
) -> SegmentView:
    return SegmentView.of(await segments.get(tenant, segment_id))


@router.patch("/segments/{segment_id}")
async def change_segment(
    segment_id: SegmentId,
    body: SegmentChanges,
    tenant: TenantDep,
    actor: ActorDep,
    segments: SegmentsDep,
    runtime: RuntimeDep,
) -> SegmentView:
    """Change the name, description or rule; a new rule is validated as a whole and starts a
    build."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    segment = await segments.update(tenant, segment_id, changes, by=actor.id)
    job = await request_build(runtime, segment, by=actor.id) if "rule" in changes else None
    return SegmentView.of(segment, build=job)


@router.delete("/segments/{segment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_segment(
    segment_id: SegmentId, tenant: TenantDep, segments: SegmentsDep
) -> Response:
    """Delete the segment, its memberships and snapshots; refused (409) while another segment
    tests membership of it."""
    await segments.delete(tenant, segment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/segments/{segment_id}/estimate")
async def estimate_segment(
    segment_id: SegmentId, tenant: TenantDep, segments: SegmentsDep, runtime: RuntimeDep
) -> Estimate:
    segment = await segments.get(tenant, segment_id)
    return await SegmentAudience(runtime).estimate(tenant, segment.rule)


@router.get("/segments/{segment_id}/portrait")
async def segment_portrait(
    segment_id: SegmentId, tenant: TenantDep, segments: SegmentsDep, runtime: RuntimeDep
) -> Portrait:
    """How the members spread over gender, stage, channel, orders, spend, recency, consent and
    tags (人群画像), computed now."""
    segment = await segments.get(tenant, segment_id)
    return await SegmentAudience(runtime).portrait(tenant, segment)


@router.post("/segments/{segment_id}/builds", status_code=status.HTTP_202_ACCEPTED)
async def build_segment(
    segment_id: SegmentId,
    tenant: TenantDep,
    actor: ActorDep,
    segments: SegmentsDep,
    runtime: RuntimeDep,
    response: Response,
) -> Job:
    """Rebuild now: a job (kind `tagging.segment_build`; poll `Location`) that takes a new
    snapshot and brings the live membership in line."""
    job = await request_build(runtime, await segments.get(tenant, segment_id), by=actor.id)
    response.headers["Location"] = f"/jobs/{job.id}"
    return job


@router.get("/segments/{segment_id}/members")
async def segment_members(
    segment_id: SegmentId,
    tenant: TenantDep,
    segments: SegmentsDep,
    runtime: RuntimeDep,
    page: PageRequestDep,
) -> Page[MemberView]:
    """The live members in customer id order, with when each joined."""
    await segments.get(tenant, segment_id)
    after = page.after_value("customer_id") if page.after else None
    found = await MembershipStore(runtime.db).members(
        tenant, segment_id, after=after, limit=page.limit + 1
    )
    items = [MemberView(customer_id=m.customer_id, joined_at=m.joined_at) for m in found]
    return page_of(items, page.limit, lambda m: {"customer_id": m.customer_id})


@router.get("/segments/{segment_id}/members.csv")
async def export_members(
    segment_id: SegmentId, tenant: TenantDep, segments: SegmentsDep, runtime: RuntimeDep
) -> StreamingResponse:
    """The live members as CSV (customer_id, joined_at), streamed."""
    await segments.get(tenant, segment_id)
    store = MembershipStore(runtime.db)

    async def rows(after: str | None) -> list[list[str]]:
        found = await store.members(tenant, segment_id, after=after, limit=CSV_PAGE)
        return [[m.customer_id, m.joined_at.isoformat()] for m in found]

    return _csv(f"{segment_id}.csv", ["customer_id", "joined_at"], rows)


@router.get("/segments/{segment_id}/snapshots")
async def segment_snapshots(
    segment_id: SegmentId, tenant: TenantDep, segments: SegmentsDep, runtime: RuntimeDep
) -> list[Snapshot]:
    """The segment's build snapshots, newest first."""
    await segments.get(tenant, segment_id)
    return await SnapshotStore(runtime.db).of_segment(tenant, segment_id, limit=SNAPSHOTS_LISTED)


@router.get("/segments/{segment_id}/snapshots/{snapshot_id}/members")
async def snapshot_members(
    segment_id: SegmentId,
    snapshot_id: SnapshotId,
    tenant: TenantDep,
    runtime: RuntimeDep,
    page: PageRequestDep,
) -> Page[str]:
    """The frozen member list of one build, in customer id order."""
    await _snapshot(runtime, tenant, segment_id, snapshot_id)
    after = page.after_value("customer_id") if page.after else None
    found = await SnapshotStore(runtime.db).members(snapshot_id, after=after, limit=page.limit + 1)
    return page_of(found, page.limit, lambda c: {"customer_id": c})


@router.get("/segments/{segment_id}/snapshots/{snapshot_id}/members.csv")
async def export_snapshot(
    segment_id: SegmentId, snapshot_id: SnapshotId, tenant: TenantDep, runtime: RuntimeDep
) -> StreamingResponse:
    await _snapshot(runtime, tenant, segment_id, snapshot_id)
    store = SnapshotStore(runtime.db)

    async def rows(after: str | None) -> list[list[str]]:
        return [[c] for c in await store.members(snapshot_id, after=after, limit=CSV_PAGE)]

    return _csv(f"{snapshot_id}.csv", ["customer_id"], rows)


@router.get("/segment-templates")
async def list_templates(tenant: TenantDep, segments: SegmentsDep) -> list[SegmentTemplate]:
    """Built-in templates (`builtin.*`) and the tenant's own (`tpl_*`)."""
    return await segments.templates(tenant)


@router.post("/segment-templates", status_code=status.HTTP_201_CREATED)
async def create_template(
    body: NewTemplate, tenant: TenantDep, segments: SegmentsDep
) -> SegmentTemplate:
    fields = body.model_dump(exclude={"parameters"})
    return await segments.add_template(tenant, **fields, parameters=body.parameters)


@router.delete("/segment-templates/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_template(
    template_id: TemplateId, tenant: TenantDep, segments: SegmentsDep
) -> Response:
    await segments.delete_template(tenant, template_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _snapshot(runtime: Runtime, tenant: str, segment_id: str, snapshot_id: str) -> None:
    snapshot = await SnapshotStore(runtime.db).get(tenant, snapshot_id)
    if snapshot is None or snapshot.segment_id != segment_id:
        raise NotFound(
            f"no snapshot {snapshot_id} of segment {segment_id}", code="snapshot_not_found"
        )


Rows = Callable[[str | None], Awaitable[list[list[str]]]]


def _csv(filename: str, header: list[str], rows: Rows) -> StreamingResponse:
    async def lines() -> AsyncIterator[str]:
        yield _line(header)
        after: str | None = None
        while batch := await rows(after):
            yield "".join(_line(row) for row in batch)
            after = batch[-1][0]

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()

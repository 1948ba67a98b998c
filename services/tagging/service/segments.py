"""Use cases of segments: write (validated against the tenant's catalogue, tags and other
segments, cycles included), delete, and templates. A write asks for a build; the build job
(`segment_builds`) brings the stored membership and a snapshot up to date."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from servicekit.clock import utcnow
from servicekit.errors import Conflict, InvalidInput
from servicekit.unit_of_work import UnitOfWork
from services.tagging.domain.rules.ast import Node
from services.tagging.domain.rules.catalogue import build_catalogue
from services.tagging.domain.rules.validate import RuleContext, read_rule, validate_rule
from services.tagging.domain.segment_templates import (
    BUILT_IN,
    BUILT_IN_TEMPLATES,
    SegmentTemplate,
    TemplateNotFound,
    TemplateParameter,
    check_template,
    instantiate,
)
from services.tagging.domain.segments import (
    MAX_SEGMENTS_PER_TENANT,
    Segment,
    SegmentInUse,
    SegmentNotFound,
    TooManySegments,
    users_of,
)
from services.tagging.domain.tag_rules import custom_fields_for, is_time_based
from services.tagging.store.facts import FactsStore
from services.tagging.store.memberships import MembershipStore
from services.tagging.store.segments import SegmentStore
from services.tagging.store.snapshots import SnapshotStore
from services.tagging.store.tag_rules import TagRuleStore
from services.tagging.store.tags import TagStore

#: The owner a rule being estimated (not yet saved) is validated as: it may name any segment.
DRAFT = "seg_draft"


class SegmentDraft(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    #: The rule's JSON form; or a template and its parameters instead.
    rule: dict[str, Any] | None = None
    template_id: str | None = None
    parameters: dict[str, Any] = {}


@dataclass
class SegmentService:
    uow: UnitOfWork
    refresh_interval_seconds: float = 3600.0

    def __post_init__(self) -> None:
        self.segments = SegmentStore(self.uow.db)

    async def create(self, tenant: str, draft: SegmentDraft, *, by: str) -> Segment:
        if await self.segments.count(tenant) >= MAX_SEGMENTS_PER_TENANT:
            raise TooManySegments()
        segment_id = f"seg_{uuid.uuid4().hex}"
        node = await self.checked_rule(tenant, await self._rule_json(tenant, draft), segment_id)
        now = utcnow()
        segment = Segment(
            tenant=tenant,
            segment_id=segment_id,
            name=draft.name,
            description=draft.description,
            rule=node,
            time_based=is_time_based(node),
            template_id=draft.template_id,
            created_by=by,
            created_at=now,
            updated_by=by,
            updated_at=now,
        )
        await self.segments.add(segment, refresh_due_at=self._refresh_due(segment, now))
        return segment

    async def get(self, tenant: str, segment_id: str) -> Segment:
        segment = await self.segments.get(tenant, segment_id)
        if segment is None:
            raise SegmentNotFound(segment_id)
        return segment

    async def update(
        self, tenant: str, segment_id: str, changes: dict[str, Any], *, by: str
    ) -> Segment:
        """Apply `changes` (name, description, rule); a concurrent change wins and this one is
        refused rather than silently lost."""
        current = await self.get(tenant, segment_id)
        node = current.rule
        if "rule" in changes:
            node = await self.checked_rule(tenant, changes["rule"], segment_id)
        now = utcnow()
        updated = current.model_copy(
            update={
                **{k: v for k, v in changes.items() if k in ("name", "description")},
                "rule": node,
                "time_based": is_time_based(node),
                "version": current.version + 1,
                "updated_by": by,
                "updated_at": now,
            }
        )
        written = await self.segments.replace(
            updated,
            expected_version=current.version,
            refresh_due_at=self._refresh_due(updated, now),
        )
        if not written:
            raise Conflict("the segment changed meanwhile; read it again", code="segment_changed")
        return updated

    async def delete(self, tenant: str, segment_id: str) -> None:
        """Refused while another segment tests membership of this one. Its members are
        forgotten without announcing each one leaving: the segment itself is gone."""
        await self.get(tenant, segment_id)
        users = users_of(
            segment_id, {s.segment_id: s.rule for s in await self.segments.all(tenant)}
        )
        if users:
            raise SegmentInUse(segment_id, users)
        await self.segments.delete(tenant, segment_id)
        await MembershipStore(self.uow.db).drop_segment(tenant, segment_id)
        await SnapshotStore(self.uow.db).drop_segment(tenant, segment_id)

    async def page(self, tenant: str, *, after: str | None, limit: int) -> list[Segment]:
        return await self.segments.page(tenant, after=after, limit=limit)

    async def rules(self, tenant: str) -> dict[str, Node]:
        """Every segment's rule, by id: what segment conditions are evaluated with."""
        return {s.segment_id: s.rule for s in await self.segments.all(tenant)}

    async def checked_rule(self, tenant: str, data: object, segment_id: str = DRAFT) -> Node:
        """Parse and validate a rule for the segment `segment_id` (DRAFT: one not saved)."""
        node = read_rule(data)
        seen = await FactsStore(self.uow.db).custom_field_types(tenant)
        others = {s.segment_id: s.rule for s in await self.segments.all(tenant)}
        others.pop(segment_id, None)
        context = RuleContext(
            catalogue=build_catalogue(custom_fields_for(node, seen)),
            tags={t.tag_id: t.spec() for t in await TagStore(self.uow.db).all(tenant)},
            segment_rules=others,
            tag_rules={r.tag_id: r.rule for r in await TagRuleStore(self.uow.db).all(tenant)},
        )
        validate_rule(node, context, owner=("segment", segment_id))
        return node

    def _refresh_due(self, segment: Segment, now: datetime) -> datetime | None:
        if not segment.time_based:
            return None
        return now + timedelta(seconds=self.refresh_interval_seconds)

    # Templates (人群模板)
    async def _rule_json(self, tenant: str, draft: SegmentDraft) -> object:
        if (draft.rule is None) == (draft.template_id is None):
            raise InvalidInput(
                "give either a rule or a template_id (with its parameters)",
                field="rule",
                code="rule_or_template",
            )
        if draft.template_id is None:
            return draft.rule
        return instantiate(await self.template(tenant, draft.template_id), draft.parameters)

    async def templates(self, tenant: str) -> list[SegmentTemplate]:
        return [*BUILT_IN_TEMPLATES, *await self.segments.templates(tenant)]

    async def template(self, tenant: str, template_id: str) -> SegmentTemplate:
        found = BUILT_IN.get(template_id) or await self.segments.template(tenant, template_id)
        if found is None:
            raise TemplateNotFound(template_id)
        return found

    async def add_template(
        self,
        tenant: str,
        *,
        name: str,
        description: str,
        category: str,
        rule: dict[str, Any],
        parameters: list[TemplateParameter],
    ) -> SegmentTemplate:
        """A tenant's template; its rule must be valid with the parameters' defaults."""
        template = SegmentTemplate(
            template_id=f"tpl_{uuid.uuid4().hex}",
            tenant=tenant,
            name=name,
            description=description,
            category=category,
            rule=rule,
            parameters=tuple(parameters),
        )
        check_template(template)
        await self.checked_rule(tenant, instantiate(template, {}))
        await self.segments.add_template(tenant, template)
        return template

    async def delete_template(self, tenant: str, template_id: str) -> None:
        if not await self.segments.delete_template(tenant, template_id):
            raise TemplateNotFound(template_id)

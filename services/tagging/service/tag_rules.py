"""Use cases of tag rules: write (validated against the tenant's catalogue, tags and other
tag rules), and pause and resume. Previews are answered by the audience engine
(`segment_audience`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from servicekit.clock import utcnow
from servicekit.errors import Conflict
from servicekit.unit_of_work import UnitOfWork
from services.tagging.domain.rules.ast import Node, rule_to_json
from services.tagging.domain.rules.catalogue import build_catalogue
from services.tagging.domain.rules.validate import RuleContext, read_rule, validate_rule
from services.tagging.domain.tag_rules import (
    RuleState,
    TagRule,
    TagRuleNotFound,
    TagValue,
    custom_fields_for,
    is_time_based,
)
from services.tagging.domain.tags import check_assignable, check_value
from services.tagging.store.facts import FactsStore
from services.tagging.store.tag_rules import TagRuleStore
from services.tagging.store.tags import TagStore


class TagRuleDraft(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    tag_id: str
    value: TagValue = None
    #: The rule's JSON form, parsed and validated by the use case.
    rule: dict[str, Any]
    priority: int = 0
    state: RuleState = RuleState.ACTIVE


@dataclass
class TagRuleService:
    uow: UnitOfWork

    def __post_init__(self) -> None:
        self.rules = TagRuleStore(self.uow.db)
        self.tags = TagStore(self.uow.db)
        self.facts = FactsStore(self.uow.db)

    async def create(self, tenant: str, draft: TagRuleDraft, *, by: str) -> TagRule:
        rule_id = f"trl_{uuid.uuid4().hex}"
        node = await self._checked(tenant, draft, rule_id=rule_id)
        now = utcnow()
        rule = TagRule(
            tenant=tenant,
            rule_id=rule_id,
            **draft.model_dump(exclude={"rule"}),
            rule=node,
            time_based=is_time_based(node),
            created_by=by,
            created_at=now,
            updated_by=by,
            updated_at=now,
        )
        await self.rules.add(rule)
        await self.rules.request_sweep(tenant)
        return rule

    async def get(self, tenant: str, rule_id: str) -> TagRule:
        rule = await self.rules.get(tenant, rule_id)
        if rule is None:
            raise TagRuleNotFound(rule_id)
        return rule

    async def update(
        self, tenant: str, rule_id: str, changes: dict[str, Any], *, by: str
    ) -> TagRule:
        """Apply `changes` (fields of a draft) to the stored rule; a concurrent change wins
        and this one is refused, rather than silently lost."""
        current = await self.get(tenant, rule_id)
        draft = TagRuleDraft.model_validate({**_draft_of(current).model_dump(), **changes})
        node = await self._checked(tenant, draft, rule_id=rule_id)
        updated = current.model_copy(
            update={
                **draft.model_dump(exclude={"rule"}),
                "rule": node,
                "time_based": is_time_based(node),
                "version": current.version + 1,
                "updated_by": by,
                "updated_at": utcnow(),
            }
        )
        if not await self.rules.replace(updated, expected_version=current.version):
            raise Conflict("the tag rule changed meanwhile; read it again", code="tag_rule_changed")
        await self.rules.request_sweep(tenant)
        return updated

    async def set_state(self, tenant: str, rule_id: str, state: RuleState, *, by: str) -> TagRule:
        return await self.update(tenant, rule_id, {"state": state}, by=by)

    async def delete(self, tenant: str, rule_id: str) -> None:
        """The tags the rule gave stay on (nothing governs them any more)."""
        if not await self.rules.delete(tenant, rule_id):
            raise TagRuleNotFound(rule_id)

    async def page(self, tenant: str, *, after: str | None, limit: int) -> list[TagRule]:
        return await self.rules.page(tenant, after=after, limit=limit)

    async def _checked(self, tenant: str, draft: TagRuleDraft, *, rule_id: str) -> Node:
        tag = check_assignable(await self.tags.get(tenant, draft.tag_id), draft.tag_id)
        check_value(tag, draft.value)
        node = read_rule(draft.rule)
        validate_rule(node, await self._context(tenant, node, rule_id), owner=("tag", tag.tag_id))
        return node

    async def _context(self, tenant: str, node: Node, rule_id: str) -> RuleContext:
        seen = await self.facts.custom_field_types(tenant)
        others = [r for r in await self.rules.all(tenant) if r.rule_id != rule_id]
        return RuleContext(
            catalogue=build_catalogue(custom_fields_for(node, seen)),
            tags={t.tag_id: t.spec() for t in await self.tags.all(tenant)},
            # One rule per tag is enough to find a cycle through that tag.
            tag_rules={r.tag_id: r.rule for r in others},
        )


def _draft_of(rule: TagRule) -> TagRuleDraft:
    return TagRuleDraft(
        name=rule.name,
        tag_id=rule.tag_id,
        value=rule.value,
        rule=rule_to_json(rule.rule),
        priority=rule.priority,
        state=rule.state,
    )

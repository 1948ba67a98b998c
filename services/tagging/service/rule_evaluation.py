"""Evaluating a tenant's tag rules for one customer and applying the result, inside the
caller's transaction (the facts consumer's, or a sweep batch's).

Every active rule of the tenant is evaluated, not only those reading what the event touched:
rules are few per tenant and a compiled rule costs microseconds, while knowing which fields an
event touched would couple every handler to the rule language. Compiled rules are cached per
process (`rules.cache`), so an edited rule is recompiled on first use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from servicekit.unit_of_work import Tx
from services.tagging.domain.facts_updates import FactsRecord
from services.tagging.domain.rules.cache import COMPILED
from services.tagging.domain.tag_rules import Change, CompiledRule, Current, TagRule, plan_changes
from services.tagging.domain.tags import RULE_NO_LONGER_HOLDS, tag_facts
from services.tagging.service.assignments import assign_tag, remove_tag
from services.tagging.store.assignments import AssignmentStore
from services.tagging.store.tag_rules import TagRuleStore

RULE_SOURCE = "rule"


def compiled_rules(rules: Sequence[TagRule]) -> list[CompiledRule]:
    return [
        CompiledRule(
            r.rule_id,
            r.tag_id,
            r.value,
            r.priority,
            COMPILED.predicate(r.tenant, r.rule_id, r.version, r.rule),
        )
        for r in rules
    ]


async def reconcile(
    tx: Tx,
    *,
    tenant: str,
    customer_id: str,
    record: FactsRecord | None,
    now: datetime,
    rules: Sequence[TagRule] | None = None,
) -> list[Change]:
    """Put on and take off the customer's rule tags so they agree with the active rules.
    `record` None or merged: no rule holds (the tags a rule put on come off)."""
    if rules is None:
        rules = await TagRuleStore(tx.db).active(tenant, session=tx.session)
    if not rules:
        return []
    assignments = await AssignmentStore(tx.db).of_customer(tenant, customer_id, session=tx.session)
    facts = record.facts(tag_facts(assignments, now)) if record and record.active else None
    current = [Current(a.tag_id, a.value, str(a.source)) for a in assignments]
    changes = plan_changes(compiled_rules(rules), facts, current, now)
    for change in changes:
        await _apply(tx, tenant, customer_id, change, now)
    return changes


async def _apply(tx: Tx, tenant: str, customer_id: str, change: Change, now: datetime) -> None:
    by = f"rule:{change.rule_id}"
    if change.assign:
        await assign_tag(
            tx,
            tenant=tenant,
            customer_id=customer_id,
            tag_id=change.tag_id,
            value=change.value,
            source=RULE_SOURCE,
            by=by,
            now=now,
        )
    else:
        await remove_tag(
            tx,
            tenant=tenant,
            customer_id=customer_id,
            tag_id=change.tag_id,
            reason=RULE_NO_LONGER_HOLDS,
            by=by,
            now=now,
        )

"""Birthday rules: a sweep (no event says "it is your birthday month") that schedules one
message a year per customer whose birthday month it is in the tenant's time zone. The
message id comes from the rule, the year and the customer, so repeated sweeps add nothing."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.reach.domain.messages import draft_for
from services.reach.domain.rules import Rule, Trigger
from services.reach.store.audience import AudienceStore
from services.reach.store.campaigns import CampaignStore
from services.reach.store.messages import MessageStore

CHUNK = 500


async def sweep(
    campaigns: CampaignStore, audience: AudienceStore, messages: MessageStore, now: datetime
) -> int:
    """Schedule this month's birthday messages not yet scheduled or sent; how many."""
    scheduled = 0
    for rule in await campaigns.active_rules_anywhere(Trigger.BIRTHDAY):
        scheduled += await _sweep_rule(rule, audience, messages, now)
    return scheduled


async def _sweep_rule(
    rule: Rule, audience: AudienceStore, messages: MessageStore, now: datetime
) -> int:
    policy = await audience.policy(rule.tenant)
    local = now.astimezone(ZoneInfo(policy.time_zone))
    born = [p["customer_id"] for p in await audience.born_in(rule.tenant, local.month)]
    drafts = [
        draft_for(
            rule.tenant,
            f"rule:{rule.rule_id}:birthday:{local.year}:{customer_id}",
            not_before=now,
            customer_id=customer_id,
            channel=rule.channel,
            purpose=rule.purpose,
            template_id=rule.template_id,
            template_version=rule.template_version,
            variables={"birthday_month": str(local.month)},
            rule_id=rule.rule_id,
        )
        for customer_id in born
    ]
    added = 0
    for at in range(0, len(drafts), CHUNK):
        chunk = drafts[at : at + CHUNK]
        new = await messages.unknown([d.message_id for d in chunk])
        await messages.schedule([d for d in chunk if d.message_id in new])
        added += len(new)
    return added

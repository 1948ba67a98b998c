"""Triggered rules at work: an event whose rules hold becomes a draft due after the rule's
delay, kept in the consumer's transaction (so a redelivered event adds nothing: the draft's
id comes from the rule and the event). The dispatcher sends it when due."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from servicekit.unit_of_work import Tx
from services.reach.domain.messages import draft_for
from services.reach.domain.rules import Trigger, holds, send_time, too_late
from services.reach.store.campaigns import CampaignStore
from services.reach.store.messages import MessageStore


async def on_event(
    tx: Tx,
    tenant: str,
    trigger: Trigger,
    *,
    event_id: str,
    customer_id: str,
    occurred_at: datetime,
    facts: dict[str, Any],
    variables: dict[str, str] | None = None,
    expires_at: datetime | None = None,
    coupon_id: str | None = None,
    advisor_id: str | None = None,
) -> int:
    """Schedule the messages of every active rule on `trigger` that holds; how many."""
    rules = await CampaignStore(tx.db).active_rules(tenant, trigger, tx.session)
    drafts = [
        draft_for(
            tenant,
            f"rule:{rule.rule_id}:{event_id}",
            not_before=send_time(rule, occurred_at, expires_at),
            customer_id=customer_id,
            recipient=rule.recipient,
            advisor_id=advisor_id,
            channel=rule.channel,
            purpose=rule.purpose,
            template_id=rule.template_id,
            template_version=rule.template_version,
            variables=variables or {},
            rule_id=rule.rule_id,
            coupon_id=coupon_id,
        )
        for rule in rules
        if holds(rule, facts) and not too_late(send_time(rule, occurred_at, expires_at), expires_at)
    ]
    await MessageStore(tx.db).schedule(drafts, tx.session)
    return len(drafts)

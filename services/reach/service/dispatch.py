"""Sending a batch of drafts: dedupe, the contact-pressure check, rendering, slot
reservation, the providers, and the record of what happened with its events.

Crash safety: a message is written `reserved` (with its rendered content and cap slots)
before any provider is called, and settled after. A run that dies in between leaves it
reserved; whoever resumes the work (the same campaign job, or a later lease of the same
draft) sends it again under the same message id, which providers take as an idempotency key
(the sandbox records it once; the webhook sends `Idempotency-Key`; SMS sends it as `OutId`).
A message already settled is never sent again."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from contracts.reach import MessageDelivered, MessageFailed, MessageSent
from servicekit.clock import utcnow
from servicekit.mongo import Document
from servicekit.unit_of_work import Tx, UnitOfWork
from services.reach.domain import links, pressure, templates
from services.reach.domain.channels import Channel, Purpose, Recipient
from services.reach.domain.messages import Draft, Status
from services.reach.domain.templates import Content, Template
from services.reach.providers.base import Accepted, Outbound, Outcome, PermanentFailure
from services.reach.service.peers import CustomerContacts
from services.reach.service.providers import Providers
from services.reach.store.audience import AudienceStore
from services.reach.store.messages import MessageStore
from services.reach.store.templates import TemplateStore

#: Re-decide a draft that lost a cap slot to a racing sender this soon.
SLOT_RETRY = timedelta(seconds=1)


@dataclass
class Tally:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    deferred: int = 0
    duplicates: int = 0
    held_out: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)
    #: Message ids finished here (sent, failed, suppressed or found done): their drafts may go.
    settled: set[str] = field(default_factory=set)

    def add(self, other: Tally) -> None:
        for name in ("sent", "delivered", "failed", "deferred", "duplicates", "held_out"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.suppressed.update(other.suppressed)
        self.settled |= other.settled

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "failed": self.failed,
            "deferred": self.deferred,
            "duplicates": self.duplicates,
            "held_out": self.held_out,
            "suppressed": dict(self.suppressed),
        }


@dataclass
class Facts:
    """What the check needs of one batch, read in a few queries."""

    policy: pressure.Policy
    customers: list[str]
    consented: dict[tuple[Channel, Purpose], set[str]]
    counts: dict[Channel, dict[str, pressure.Counts]]
    #: Template attributes, and `merged_into` for a customer merged away (never contacted).
    profiles: dict[str, Document]
    quotas: dict[str, dict[str, int]]


class Dispatcher:
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        messages: MessageStore,
        audience: AudienceStore,
        templates: TemplateStore,
        providers: Providers,
        contacts: CustomerContacts,
        link_base: str,
        link_key: bytes,
    ) -> None:
        self.uow = uow
        self.messages = messages
        self.audience = audience
        self.templates = templates
        self.providers = providers
        self.contacts = contacts
        self.link_base = link_base.rstrip("/")
        self.link_key = link_key

    async def dispatch(
        self,
        tenant: str,
        drafts: list[Draft],
        *,
        resend_reserved_after: timedelta = timedelta(0),
        now: datetime | None = None,
    ) -> Tally:
        """Decide and send `drafts`; `resend_reserved_after` is how old a reservation must
        be before it is taken for abandoned (0 when the caller owns the work by a lease)."""
        now = now or utcnow()
        tally = Tally()
        drafts = list({d.message_id: d for d in drafts}.values())
        existing = await self.messages.existing([d.message_id for d in drafts])
        fresh, resend = self._sort_out(drafts, existing, now - resend_reserved_after, tally)
        docs, deferrals = await self._decide(tenant, fresh, now, tally)
        inserted = await self.messages.insert(docs)
        tally.duplicates += len(inserted.duplicate)
        tally.settled |= inserted.duplicate
        retry_at = now + SLOT_RETRY
        deferrals += [(d, retry_at) for d in fresh if d.message_id in inserted.slot_lost]
        await self.messages.postpone(deferrals)
        tally.deferred += len(deferrals)
        for doc in docs:
            if doc["_id"] in inserted.taken and doc["status"] != str(Status.RESERVED):
                tally.settled.add(doc["_id"])
        reserved = [
            d for d in docs if d["_id"] in inserted.taken and d["status"] == str(Status.RESERVED)
        ]
        await self._send(tenant, [*reserved, *resend], tally)
        return tally

    def _sort_out(
        self,
        drafts: list[Draft],
        existing: dict[str, Document],
        stale_before: datetime,
        tally: Tally,
    ) -> tuple[list[Draft], list[Document]]:
        fresh: list[Draft] = []
        resend: list[Document] = []
        for draft in drafts:
            doc = existing.get(draft.message_id)
            if doc is None:
                fresh.append(draft)
            elif doc["status"] == str(Status.RESERVED) and doc["reserved_at"] <= stale_before:
                resend.append(doc)
            else:
                tally.duplicates += 1
                if doc["status"] != str(Status.RESERVED):
                    tally.settled.add(draft.message_id)
        return fresh, resend

    # ------------------------------------------------------------------ deciding

    async def _facts(self, tenant: str, drafts: list[Draft], now: datetime) -> Facts:
        policy = await self.audience.policy(tenant)
        w = pressure.windows(policy, now)
        customers = sorted({d.customer_id for d in drafts})
        pairs = {(d.channel, d.purpose) for d in drafts}
        consented = {
            (c, p): await self.audience.consented(tenant, customers, str(c), str(p))
            for c, p in pairs
        }
        profiles = await self.audience.profiles(tenant, customers)
        merged = {
            c: [m["customer_id"] for m in p.get("merged_ids", [])] for c, p in profiles.items()
        }
        counted = sorted({*customers, *(m for ids in merged.values() for m in ids)})
        counts = {
            c: pressure.per_person(await self.messages.counts(tenant, counted, str(c), w), merged)
            for c in {d.channel for d in drafts}
        }
        return Facts(policy, customers, consented, counts, profiles, {})

    async def _decide(
        self, tenant: str, drafts: list[Draft], now: datetime, tally: Tally
    ) -> tuple[list[Document], list[tuple[Draft, datetime]]]:
        if not drafts:
            return [], []
        facts = await self._facts(tenant, drafts, now)
        docs: list[Document] = []
        deferrals: list[tuple[Draft, datetime]] = []
        templates_used = {
            (d.template_id, d.template_version): await self._template(tenant, d)
            for d in {(d.template_id, d.template_version): d for d in drafts}.values()
        }
        for draft in drafts:
            template = templates_used[(draft.template_id, draft.template_version)]
            doc = await self._decide_one(draft, template, facts, now, tally, deferrals)
            if doc is not None:
                docs.append(doc)
        return docs, deferrals

    async def _decide_one(
        self,
        draft: Draft,
        template: Template | None,
        facts: Facts,
        now: datetime,
        tally: Tally,
        deferrals: list[tuple[Draft, datetime]],
    ) -> Document | None:
        if template is None or template.channel is not draft.channel:
            tally.failed += 1
            return _doc(draft, now, Status.FAILED, reason="template_missing")
        ask = pressure.Ask(draft.channel, draft.purpose, draft.recipient, draft.mass)
        consented = draft.customer_id in facts.consented[(draft.channel, draft.purpose)]
        counts = facts.counts[draft.channel].get(draft.customer_id, pressure.Counts())
        merged = bool(facts.profiles.get(draft.customer_id, {}).get("merged_into"))
        decision = pressure.decide(
            ask, facts.policy, consented=consented, counts=counts, now=now, merged=merged
        )
        if isinstance(decision, pressure.Defer):
            deferrals.append((draft, decision.until))
            return None
        if isinstance(decision, pressure.Suppress):
            tally.suppressed[decision.reason] += 1
            return _doc(draft, now, Status.SUPPRESSED, reason=decision.reason)
        no_quota = await self._no_quota(draft, template, facts)
        if no_quota:
            tally.suppressed[no_quota] += 1
            return _doc(draft, now, Status.SUPPRESSED, reason=no_quota)
        return self._reserve(draft, template, facts, decision, now, tally)

    def _reserve(
        self,
        draft: Draft,
        template: Template,
        facts: Facts,
        decision: pressure.Send,
        now: datetime,
        tally: Tally,
    ) -> Document:
        values = self._values(draft, facts.profiles.get(draft.customer_id, {}))
        try:
            rendered = templates.render(template, values)
        except templates.MissingVariable as missing:
            tally.failed += 1
            return _doc(draft, now, Status.FAILED, reason=f"missing_variable:{missing.name}")
        doc = _doc(draft, now, Status.RESERVED, reserved_at=now)
        doc |= {"content": rendered.content.model_dump(exclude_none=True), "variables": values}
        doc |= {"segments": rendered.segments, "link_url": draft.variables.get("link_url")}
        if decision.slots is not None:
            w = pressure.windows(facts.policy, now)
            doc |= {
                "day": w.day,
                "week": w.week,
                "day_slot": decision.slots.day,
                "week_slot": decision.slots.week,
            }
            if decision.slots.month:
                doc |= {"month": w.month, "month_slot": decision.slots.month}
            _count_locally(facts, draft, decision.slots)
        return doc

    def _values(self, draft: Draft, profile: Document) -> dict[str, str]:
        values = {k: v for k, v in draft.variables.items() if k in templates.VARIABLES}
        if profile.get("display_name"):
            values.setdefault("customer_name", profile["display_name"])
        if profile.get("birthday_month"):
            values.setdefault("birthday_month", str(profile["birthday_month"]))
        values["link"] = f"{self.link_base}/r/{links.link_id(self.link_key, draft.message_id)}"
        return values

    async def _template(self, tenant: str, draft: Draft) -> Template | None:
        return await self.templates.version(tenant, draft.template_id, draft.template_version)

    async def _no_quota(self, draft: Draft, template: Template, facts: Facts) -> str | None:
        """A subscription message needs an authorisation left (one message each)."""
        if (
            draft.channel is not Channel.SUBSCRIPTION_MESSAGE
            or draft.recipient is Recipient.ADVISOR
        ):
            return None
        platform_id = template.content.platform_template_id or ""
        if platform_id not in facts.quotas:
            customers = sorted(facts.profiles.keys() | {draft.customer_id})
            facts.quotas[platform_id] = await self.audience.quotas(
                draft.tenant, customers, platform_id
            )
        if platform_id and facts.quotas[platform_id].get(draft.customer_id, 0) > 0:
            facts.quotas[platform_id][draft.customer_id] -= 1
            return None
        return "no_subscription_authorisation"

    # ------------------------------------------------------------------ sending

    async def _send(self, tenant: str, docs: list[Document], tally: Tally) -> None:
        docs = await self._spend_quotas(docs, tally)
        by_channel: dict[Channel, list[Document]] = {}
        for doc in docs:
            by_channel.setdefault(Channel(doc["channel"]), []).append(doc)
        settled: list[tuple[Document, Outcome, str]] = []
        for channel, group in by_channel.items():
            provider = await self.providers.for_tenant(tenant, channel)
            outbound = await self._outbound(group, provider.provider.address_kind)
            ready = [
                (d, o) for d, o in zip(group, outbound, strict=True) if isinstance(o, Outbound)
            ]
            outcomes = await provider.send_many([o for _, o in ready]) if ready else []
            settled += [(d, o, provider.name) for (d, _), o in zip(ready, outcomes, strict=True)]
            settled += [
                (d, o, provider.name)
                for d, o in zip(group, outbound, strict=True)
                if not isinstance(o, Outbound)
            ]
        await self._record(tenant, settled, tally)

    async def _spend_quotas(self, docs: list[Document], tally: Tally) -> list[Document]:
        kept = []
        for doc in docs:
            platform_id = doc.get("content", {}).get("platform_template_id")
            if (
                doc["channel"] != str(Channel.SUBSCRIPTION_MESSAGE)
                or doc.get("recipient") == str(Recipient.ADVISOR)
                or await self.audience.use_quota(
                    doc["tenant"], doc["customer_id"], platform_id or "", doc["_id"]
                )
            ):
                kept.append(doc)
            else:
                await self.messages.release(doc["_id"], "no_subscription_authorisation")
                tally.suppressed["no_subscription_authorisation"] += 1
                tally.settled.add(doc["_id"])
        return kept

    async def _outbound(self, docs: list[Document], kind: str | None) -> list[Outbound | Outcome]:
        gate = asyncio.Semaphore(16)

        async def one(doc: Document) -> Outbound | Outcome:
            address = None
            if doc.get("recipient") == str(Recipient.ADVISOR):
                address = doc.get("advisor_id")
            elif kind is not None:
                async with gate:
                    address = await self.contacts.resolve(doc["tenant"], doc["customer_id"], kind)
                if not address:
                    return PermanentFailure(f"no_{kind}")
            return Outbound(
                tenant=doc["tenant"],
                message_id=doc["_id"],
                customer_id=doc["customer_id"],
                channel=Channel(doc["channel"]),
                content=Content.model_validate(doc["content"]),
                address=address,
                variables={k: v for k, v in doc.get("variables", {}).items() if k != "link"},
                campaign_id=doc.get("campaign_id"),
            )

        return list(await asyncio.gather(*(one(d) for d in docs)))

    async def _record(
        self, tenant: str, settled: list[tuple[Document, Outcome, str]], tally: Tally
    ) -> None:
        if not settled:
            return
        now = utcnow()
        updates, events = [], []
        for doc, outcome, provider in settled:
            fields, doc_events = _outcome(doc, outcome, provider, now)
            final = {**doc, **fields}
            updates.append({k: v for k, v in final.items() if v is not None})
            events += doc_events

        async def work(tx: Tx) -> set[str]:
            mine = await self.messages.settle(updates, tx.session)
            await tx.emit(*(e for e in events if e.message_id in mine), tenant=tenant)
            return mine

        mine = await self.uow.run(work)
        for doc, outcome, _ in settled:
            tally.settled.add(doc["_id"])
            if doc["_id"] not in mine:
                tally.duplicates += 1
            elif isinstance(outcome, Accepted):
                tally.sent += 1
                tally.delivered += outcome.delivered_at is not None
            else:
                tally.failed += 1


def _outcome(
    doc: Document, outcome: Outcome, provider: str, now: datetime
) -> tuple[Document, list[Any]]:
    common = {
        "message_id": doc["_id"],
        "customer_id": doc["customer_id"],
        "channel": doc["channel"],
    }
    common["campaign_id"] = doc.get("campaign_id")
    if not isinstance(outcome, Accepted):
        fields = {
            "status": str(Status.FAILED),
            "reason": outcome.reason,
            "provider": provider,
            "failed_at": now,
        }
        # A failed message does not count against the customer's caps.
        fields |= {
            "day_slot": None,
            "week_slot": None,
            "month_slot": None,
            "day": None,
            "week": None,
            "month": None,
        }
        return fields, [MessageFailed(**common, reason=outcome.reason[:300], failed_at=now)]
    sent = MessageSent(
        **common,
        purpose=doc["purpose"],
        provider=provider,
        template_id=doc["template_id"],
        template_version=doc["template_version"],
        rule_id=doc.get("rule_id"),
        variant=doc.get("variant"),
        sent_at=now,
    )
    fields = {
        "status": str(Status.SENT),
        "provider": provider,
        "provider_ref": outcome.provider_ref,
        "sent_at": now,
    }
    if outcome.delivered_at is None:
        return fields, [sent]
    fields |= {"status": str(Status.DELIVERED), "delivered_at": outcome.delivered_at}
    return fields, [sent, MessageDelivered(**common, delivered_at=outcome.delivered_at)]


def _doc(draft: Draft, now: datetime, status: Status, **extra: Any) -> Document:
    doc = draft.model_dump(
        mode="python", exclude={"message_id", "not_before", "variables", "coupon_id"}
    )
    return {"_id": draft.message_id, **doc, "status": str(status), "at": now, **extra}


def _count_locally(facts: Facts, draft: Draft, slots: pressure.Slots) -> None:
    """A second message to the same customer in one batch sees the first one's slots."""
    per_customer = facts.counts[draft.channel]
    c = per_customer.get(draft.customer_id, pressure.Counts())
    per_customer[draft.customer_id] = pressure.Counts(
        day=c.day + 1, week=c.week + 1, month_mass=c.month_mass + (slots.month is not None)
    )

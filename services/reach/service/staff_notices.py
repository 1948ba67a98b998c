"""Ops alerts told to the owning team. The alert event's handler queues one notice per
contact of the team (the alert's `owner`, else the tenant's `ops` team) in its own
transaction; the dispatcher sends them through the normal providers — the tenant's (or
the deployment's) email and SMS providers, a webhook contact through the signed webhook
provider — and records each as a message (purpose `service`, recipient `staff`). No
consent, caps or quiet hours apply to staff, but a notice goes once per alert and contact:
its message id comes from both, an id already recorded is not sent again, and providers
take it as the idempotency key when a crash makes a notice go out twice. Transient
failures are retried with backoff; after `MOST_ATTEMPTS` the notice is recorded failed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from servicekit.clock import utcnow
from servicekit.mongo import Document
from servicekit.unit_of_work import Tx
from services.reach.domain import staff
from services.reach.domain.channels import Channel, Purpose
from services.reach.domain.messages import Status
from services.reach.domain.staff import Alert
from services.reach.domain.templates import Content
from services.reach.providers.base import Accepted, Outbound, Outcome, TransientFailure
from services.reach.providers.guarded import Guarded
from services.reach.providers.webhook import WebhookProvider
from services.reach.service.providers import Providers
from services.reach.settings import ReachSettings
from services.reach.store.messages import MessageStore
from services.reach.store.teams import TeamStore

LEASE = timedelta(seconds=60)
MOST_ATTEMPTS = 8


async def queue_in(tx: Tx, tenant: str, alert: Alert) -> int:
    """Queue the alert's notices for its team's contacts; how many."""
    teams = TeamStore(tx.db)
    team = await teams.get(tenant, alert.owner, tx.session) if alert.owner else None
    team = team or await teams.get(tenant, staff.FALLBACK_TEAM, tx.session)
    if team is None:
        return 0
    now = utcnow()
    said = staff.content(alert)
    notices = [
        {
            "_id": staff.notice_id(tenant, alert.alert_id, contact),
            "tenant": tenant,
            "alert_id": alert.alert_id,
            "team": team.team,
            "kind": str(contact.kind),
            "address": contact.address,
            "channel": staff.CHANNEL[contact.kind],
            "content": said,
            "variables": {"title": alert.title[:20], "severity": alert.severity[:10]},
            "next_at": now,
            "lease_until": now,
            "attempts": 0,
        }
        for contact in team.contacts
    ]
    await teams.queue(notices, tx.session)
    return len(notices)


class StaffNotifier:
    def __init__(
        self,
        teams: TeamStore,
        messages: MessageStore,
        providers: Providers,
        settings: ReachSettings,
    ) -> None:
        self.teams, self.messages, self.providers = teams, messages, providers
        self.settings = settings
        self._hooks: dict[tuple[str, str], Guarded] = {}

    async def send_due(self, owner: str) -> int:
        """Send the notices due now (a lease keeps two replicas off one); how many settled."""
        now = utcnow()
        notices = await self.teams.claim_due(now, owner, LEASE)
        if not notices:
            return 0
        recorded = await self.messages.existing([n["_id"] for n in notices])
        await self.teams.done(sorted(recorded))
        settled = 0
        groups: dict[tuple[str, str, str], list[Document]] = {}
        for notice in notices:
            if notice["_id"] not in recorded:
                key = (
                    notice["tenant"],
                    notice["channel"],
                    notice["address"] if notice["channel"] == "webhook" else "",
                )
                groups.setdefault(key, []).append(notice)
        for (tenant, channel, url), group in groups.items():
            provider = await self._provider(tenant, channel, url)
            outcomes = await provider.send_many([self._outbound(n) for n in group])
            settled += await self._settle(group, outcomes, provider.name, now)
        return settled

    async def _provider(self, tenant: str, channel: str, url: str) -> Guarded:
        if channel != "webhook":
            return await self.providers.for_tenant(tenant, Channel(channel))
        found = self._hooks.get((tenant, url))
        if found is None:
            secret = await self._webhook_secret(tenant)
            hook = WebhookProvider(
                url=url, secret=secret, timeout=self.settings.provider_timeout_seconds
            )
            found = self._hooks[(tenant, url)] = Guarded(
                hook,
                attempts=self.settings.provider_attempts,
                backoff=self.settings.provider_backoff_seconds,
            )
        return found

    async def _webhook_secret(self, tenant: str) -> str:
        """The tenant's own webhook secret when it has one, else the deployment's."""
        store = self.providers.store
        for doc in await store.of_tenant(tenant) if store else []:
            if doc["provider"] == "webhook":
                return store.secrets(doc)["secret"]  # type: ignore[union-attr]
        return self.settings.webhook_secret

    def _outbound(self, notice: Document) -> Outbound:
        content = Content(
            **notice["content"],
            sign_name=self.settings.staff_sms_sign_name,
            platform_template_id=self.settings.staff_sms_template_code,
        )
        return Outbound(
            tenant=notice["tenant"],
            message_id=notice["_id"],
            customer_id=f"team:{notice['team']}",
            channel=notice["channel"],
            content=content,
            address=notice["address"],
            variables=notice["variables"],
        )

    async def _settle(
        self, group: list[Document], outcomes: list[Outcome], provider: str, now: datetime
    ) -> int:
        docs, retry = [], []
        for notice, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, TransientFailure) and notice["attempts"] + 1 < MOST_ATTEMPTS:
                retry.append((notice, outcome.reason))
            else:
                docs.append(_message(notice, outcome, provider, now))
        for notice, reason in retry:
            backoff = timedelta(seconds=min(300, 2 ** notice["attempts"]))
            await self.teams.later(notice["_id"], utcnow() + backoff, reason)
        inserted = await self.messages.insert(docs)
        await self.teams.done(sorted(inserted.taken | inserted.duplicate))
        return len(docs)

    async def close(self) -> None:
        for hook in self._hooks.values():
            await hook.close()


def _message(notice: Document, outcome: Outcome, provider: str, now: datetime) -> Document:
    doc: dict[str, Any] = {
        "_id": notice["_id"],
        "tenant": notice["tenant"],
        "customer_id": f"team:{notice['team']}",
        "recipient": "staff",
        "team": notice["team"],
        "alert_id": notice["alert_id"],
        "address": notice["address"],
        "channel": notice["channel"],
        "purpose": str(Purpose.SERVICE),
        "template_id": staff.TEMPLATE_ID,
        "template_version": 1,
        "content": notice["content"],
        "provider": provider,
        "at": now,
    }
    if isinstance(outcome, Accepted):
        doc |= {"status": str(Status.SENT), "sent_at": now, "provider_ref": outcome.provider_ref}
        if outcome.delivered_at is not None:
            doc |= {"status": str(Status.DELIVERED), "delivered_at": outcome.delivered_at}
        return doc
    return doc | {"status": str(Status.FAILED), "reason": outcome.reason[:300], "failed_at": now}

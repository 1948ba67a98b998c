"""One round of tag sync: claim due changes, make sure the platform knows their tags,
push them, and record each outcome (retried with backoff when transient)."""

from __future__ import annotations

from datetime import timedelta
from itertools import groupby

from pymongo.asynchronous.database import AsyncDatabase

from servicekit.clock import utcnow
from servicekit.mongo import Document
from services.tagging.store.tags import TagStore
from services.tagging.sync.connector import ChangeOutcome, Connector, SyncStatus, TagChange
from services.tagging.sync.store import SyncLog, SyncQueue

#: After this many transient failures a change is recorded as failed and dropped.
MAX_ATTEMPTS = 6
LEASE = timedelta(minutes=2)


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Doubling waits between retries, capped at an hour."""
    return timedelta(seconds=min(base_seconds * 2 ** max(attempts - 1, 0), 3600))


class TagSync:
    def __init__(
        self, db: AsyncDatabase[Document], connector: Connector, *, retry_base_seconds: float
    ) -> None:
        self.queue = SyncQueue(db)
        self.log = SyncLog(db)
        self.tags = TagStore(db)
        self.connector = connector
        self.retry_base_seconds = retry_base_seconds

    async def round(self, limit: int = 100) -> int:
        """Push up to `limit` due changes; returns how many were claimed."""
        changes = await self.queue.claim(utcnow(), limit, LEASE)
        for tenant, group in groupby(sorted(changes, key=lambda c: c.tenant), lambda c: c.tenant):
            await self._push(tenant, list(group))
        return len(changes)

    async def _push(self, tenant: str, changes: list[TagChange]) -> None:
        try:
            tags = [
                t for t in await self.tags.all(tenant) if t.tag_id in {c.tag_id for c in changes}
            ]
            await self.connector.ensure_tags(tenant, tags)
            outcomes = (await self.connector.push(tenant, changes)).outcomes
        except Exception as exc:  # the platform or network failed as a whole: retry all
            outcomes = [
                ChangeOutcome(change_id=c.change_id, status=SyncStatus.RETRY, errmsg=str(exc)[:200])
                for c in changes
            ]
        by_id = {o.change_id: o for o in outcomes}
        for change in changes:
            await self._settle(change, by_id[change.change_id])

    async def _settle(self, change: TagChange, outcome: ChangeOutcome) -> None:
        attempts = change.attempts + 1
        now = utcnow()
        if outcome.status == SyncStatus.RETRY and attempts < MAX_ATTEMPTS:
            await self.log.record(change, outcome, attempts=attempts, at=now)
            await self.queue.retry_at(
                change.change_id, now + backoff(attempts, self.retry_base_seconds)
            )
            return
        if outcome.status == SyncStatus.RETRY:
            outcome = outcome.model_copy(update={"status": SyncStatus.FAILED})
        await self.log.record(change, outcome, attempts=attempts, at=now)
        await self.queue.done(change.change_id)

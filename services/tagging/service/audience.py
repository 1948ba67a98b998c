"""Keeping the in-memory audience engine current from the facts store.

A tenant is loaded whole on first use (its active customers' facts and tags, in batches), then
followed through the facts documents' `updated_at`: the consumer sets it on every save, a tag
change and an evaluation `touch` it, an erasure leaves a tombstone. Each catch-up re-reads the
last `overlap` of changes, because a transaction stamps `updated_at` before it commits; a
re-read is harmless (an upsert of the same facts). Every replica keeps its own engine; the
store stays the one source of truth, and live membership is decided from it, not from here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from servicekit.clock import utcnow
from servicekit.mongo import Document
from servicekit.runtime import Runtime, Worker
from services.tagging.audience import AudienceEngine, TenantAudience
from services.tagging.domain.facts_updates import FactsRecord
from services.tagging.domain.rules.facts import CustomerFacts
from services.tagging.domain.tags import tag_facts
from services.tagging.settings import TaggingSettings
from services.tagging.store.assignments import AssignmentStore
from services.tagging.store.facts import FactsStore, FeedPosition
from services.tagging.store.segments import SegmentStore

log = logging.getLogger("tagging.audience")
#: `runtime.state` key of the service's keeper.
AUDIENCE = "audience"
LOAD_BATCH = 5_000
CHANGES_BATCH = 10_000


class AudienceKeeper:
    def __init__(self, db: AsyncDatabase[Document], *, overlap_seconds: float = 10.0) -> None:
        self.engine = AudienceEngine()
        self._db = db
        self._overlap = timedelta(seconds=overlap_seconds)
        #: Tenant -> the `updated_at` from which its next catch-up reads.
        self._marks: dict[str, datetime] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def loaded(self) -> list[str]:
        return sorted(self._marks)

    async def current(self, tenant: str) -> TenantAudience:
        """The tenant's audience as of now: loaded if new, else caught up."""
        async with self._locks.setdefault(tenant, asyncio.Lock()):
            if tenant in self._marks:
                await self._catch_up(tenant)
            else:
                await self._load(tenant)
        return self.engine.tenant(tenant)

    async def _load(self, tenant: str) -> None:
        started, after = utcnow(), None
        audience = self.engine.tenant(tenant)
        facts = FactsStore(self._db)
        while batch := await facts.page(tenant, after=after, limit=LOAD_BATCH):
            audience.upsert_many(await self._with_tags(tenant, batch, started))
            after = batch[-1].customer_id
        self._marks[tenant] = started - self._overlap
        log.info("audience of %s loaded: %d customers", tenant, len(audience))

    async def _catch_up(self, tenant: str) -> None:
        started, audience = utcnow(), self.engine.tenant(tenant)
        position: FeedPosition = (self._marks[tenant], None)
        while changes := await FactsStore(self._db).changed_since(
            tenant, position, limit=CHANGES_BATCH
        ):
            active = [c.record for c in changes if c.record is not None]
            audience.upsert_many(await self._with_tags(tenant, active, started))
            for change in changes:
                if change.record is None:
                    audience.remove(change.customer_id)
            if len(changes) < CHANGES_BATCH:
                break
            position = changes[-1].position
        self._marks[tenant] = started - self._overlap

    async def _with_tags(
        self, tenant: str, records: Sequence[FactsRecord], now: datetime
    ) -> list[CustomerFacts]:
        if not records:
            return []
        ids = [r.customer_id for r in records]
        tags = await AssignmentStore(self._db).of_customers(tenant, ids)
        return [r.facts(tag_facts(tags[r.customer_id], now)) for r in records]


def keeper_of(runtime: Runtime) -> AudienceKeeper:
    keeper = runtime.state.get(AUDIENCE)
    if not isinstance(keeper, AudienceKeeper):
        settings = runtime.settings
        overlap = (
            settings.audience_overlap_seconds if isinstance(settings, TaggingSettings) else 10.0
        )
        keeper = AudienceKeeper(runtime.db, overlap_seconds=overlap)
        runtime.state[AUDIENCE] = keeper
    return keeper


async def follow_changes(runtime: Runtime) -> None:
    """Load the tenants that have segments, then keep every loaded tenant caught up, so
    estimates and builds find the engine warm."""
    keeper = keeper_of(runtime)
    settings = runtime.settings
    interval = settings.audience_poll_seconds if isinstance(settings, TaggingSettings) else 1.0
    for tenant in await SegmentStore(runtime.db).tenants():
        await _safely(keeper, tenant)
    while True:
        await asyncio.sleep(interval)
        for tenant in keeper.loaded():
            await _safely(keeper, tenant)


async def _safely(keeper: AudienceKeeper, tenant: str) -> None:
    try:
        await keeper.current(tenant)
    except Exception:
        log.exception("audience of %s could not be caught up; the next round retries", tenant)


AUDIENCE_WORKER = Worker(name="audience", run=follow_changes)

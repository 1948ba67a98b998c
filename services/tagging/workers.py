"""Background loops of the tagging service: jobs (batch tagging, segment builds), expiry
sweep, tag sync, tag rule sweep, the audience engine's change feed, segment refreshes."""

from __future__ import annotations

import asyncio
import logging

from servicekit.jobs import JobRunner
from servicekit.runtime import Runtime, Worker
from services.tagging.service import batch, segment_builds
from services.tagging.service.audience import AUDIENCE_WORKER
from services.tagging.service.expiry import sweep_expired
from services.tagging.service.rule_sweep import run_rule_sweep
from services.tagging.settings import TaggingSettings
from services.tagging.sync.worker import SYNC_WORKER

log = logging.getLogger("services.tagging.workers")

EXPIRY_BATCH = 200


async def run_expiry(runtime: Runtime) -> None:
    """Remove expired assignments; a full batch is followed at once by the next."""
    settings = runtime.settings
    interval = settings.expiry_poll_seconds if isinstance(settings, TaggingSettings) else 30.0
    while True:
        examined = 0
        try:
            examined, _ = await sweep_expired(runtime.uow, limit=EXPIRY_BATCH)
        except Exception:
            log.exception("expiry sweep failed; the next round retries")
        if examined < EXPIRY_BATCH:
            await asyncio.sleep(interval)


WORKERS: list[Worker] = [
    JobRunner({**batch.HANDLERS, **segment_builds.HANDLERS}).worker(),
    Worker(name="tag-expiry", run=run_expiry),
    SYNC_WORKER,
    Worker(name="tag-rule-sweep", run=run_rule_sweep),
    AUDIENCE_WORKER,
    segment_builds.REFRESH_WORKER,
]

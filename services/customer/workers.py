"""Background loops of the customer service (schedulers and sweeps)."""

from __future__ import annotations

import asyncio
import logging

from servicekit.jobs import JobRunner
from servicekit.runtime import Runtime, Worker
from services.customer.service import handover, imports
from services.customer.service.follow_ups import FollowUpService
from services.customer.store.customers import CustomerStore
from services.customer.store.follow_ups import FollowUpStore

log = logging.getLogger("services.customer.workers")

#: How often due reminders are looked for: a reminder goes out at most this late. The scan
#: is one indexed query, so a few seconds costs nothing and keeps reminders timely.
REMINDER_POLL_SECONDS = 5.0
#: Reminders published per round; a full round is followed at once by the next.
REMINDER_BATCH = 100


class ReminderPublisher:
    """Publishes due follow-up reminders as `FollowUpReminderDue` events. Every replica may
    run one: each reminder is claimed in the transaction that emits its event, so it is
    published exactly once. A fault is logged and the next round tries again."""

    def __init__(
        self,
        *,
        interval_seconds: float = REMINDER_POLL_SECONDS,
        batch_size: int = REMINDER_BATCH,
    ) -> None:
        self.interval_seconds = interval_seconds
        self.batch_size = batch_size
        #: Rounds finished, reminders published and faulted rounds, for tests and probes.
        self.rounds = 0
        self.published = 0
        self.faults = 0

    def worker(self) -> Worker:
        return Worker(name="follow-up-reminders", run=self.run)

    async def run(self, runtime: Runtime) -> None:
        """Loop until cancelled; a failed round is logged and the next one tries again."""
        service = FollowUpService(runtime.uow, FollowUpStore(runtime.db), CustomerStore(runtime.db))
        while True:
            full = False
            try:
                full = await self.round(service)
            except Exception:
                self.faults += 1
                log.exception("reminder round failed; the next round retries")
            self.rounds += 1
            if not full:
                await asyncio.sleep(self.interval_seconds)

    async def round(self, service: FollowUpService) -> bool:
        """Publish what is due; True when the batch was full and more may be waiting."""
        examined, published = await service.publish_due_reminders(limit=self.batch_size)
        self.published += published
        return examined >= self.batch_size


def reminder_worker(
    *, interval_seconds: float = REMINDER_POLL_SECONDS, batch_size: int = REMINDER_BATCH
) -> Worker:
    return ReminderPublisher(interval_seconds=interval_seconds, batch_size=batch_size).worker()


WORKERS: list[Worker] = [reminder_worker()]
#: Long operations (handover, CSV import) as pollable jobs.
WORKERS.append(JobRunner({**handover.HANDLERS, **imports.HANDLERS}).worker())

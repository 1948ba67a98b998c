"""Background loops of the reach service: the dispatcher (due drafts — delayed rules,
messages deferred past quiet hours — due campaigns, staff notices of ops alerts, consent
withdrawals to forward) and the job runner that runs campaigns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import defaultdict
from datetime import timedelta

from servicekit.clock import utcnow
from servicekit.context import current_tenant
from servicekit.jobs import JobRunner
from servicekit.runtime import Runtime, Worker
from services.reach.domain.messages import Draft
from services.reach.service import birthdays, campaigns, unsubscribe
from services.reach.service.wiring import Reach, reach_of

log = logging.getLogger("services.reach.workers")

#: A leased draft not settled within this long is taken by another round (its sender died).
DRAFT_LEASE = timedelta(seconds=60)
WAKE = "reach.dispatch_wakeup"


class DispatchLoop:
    """Every replica may run one: drafts are leased, campaigns started by a conditional
    state change, so no two replicas do the same work. A failed round is logged and the
    next one tries again."""

    def __init__(self) -> None:
        self.owner = f"{socket.gethostname()}:{id(self):x}"
        self.last_birthday_sweep = 0.0
        self.rounds = 0
        self.faults = 0

    def worker(self) -> Worker:
        return Worker(name="reach-dispatch", run=self.run)

    async def run(self, runtime: Runtime) -> None:
        reach = reach_of(runtime)
        wake = runtime.state.setdefault(WAKE, asyncio.Event())
        try:
            while True:
                full = False
                try:
                    full = await self.round(runtime, reach)
                except Exception:
                    self.faults += 1
                    log.exception("dispatch round failed; the next round retries")
                self.rounds += 1
                if not full:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), reach.settings.dispatch_poll_seconds)
                    wake.clear()
        finally:
            await reach.close()

    async def round(self, runtime: Runtime, reach: Reach) -> bool:
        await self._start_due_campaigns(runtime, reach)
        full = await self._send_due_drafts(reach)
        await reach.staff.send_due(self.owner)
        await unsubscribe.forward_due(reach.audience, reach.contacts)
        await self._sweep_birthdays(reach)
        return full

    async def _sweep_birthdays(self, reach: Reach) -> None:
        if time.monotonic() - self.last_birthday_sweep < reach.settings.birthday_sweep_seconds:
            return
        self.last_birthday_sweep = time.monotonic()
        await birthdays.sweep(reach.campaigns, reach.audience, reach.messages, utcnow())

    async def _start_due_campaigns(self, runtime: Runtime, reach: Reach) -> None:
        for campaign in await reach.campaigns.due(utcnow()):
            with contextlib.suppress(Exception):
                await campaigns.start(runtime, campaign, by="scheduler")

    async def _send_due_drafts(self, reach: Reach) -> bool:
        limit = reach.settings.dispatch_batch
        drafts = await reach.messages.claim_due(utcnow(), self.owner, DRAFT_LEASE, limit)
        by_tenant: dict[str, list[Draft]] = defaultdict(list)
        for draft in drafts:
            by_tenant[draft.tenant].append(draft)
        for tenant, group in by_tenant.items():
            token = current_tenant.set(tenant)
            try:
                tally = await reach.dispatcher.dispatch(tenant, group)
            finally:
                current_tenant.reset(token)
            await reach.messages.done(sorted(tally.settled), self.owner)
        return len(drafts) >= limit


def workers() -> list[Worker]:
    runner = JobRunner({campaigns.JOB_KIND: campaigns.run})
    return [DispatchLoop().worker(), runner.worker()]

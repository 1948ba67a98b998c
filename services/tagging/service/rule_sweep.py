"""The tag rule sweep: time alone turns some rules true or false ("no purchase in 180 days"),
with no event to say so. Every `interval` seconds each replica walks the tenants with an
active time-based rule (or whose rules changed) and re-evaluates every active rule for every
active customer, in batches of one transaction each.

The loop ticks at most every five seconds; a tenant is swept when it is due.
A per-tenant lease keeps two replicas from sweeping one tenant at once, and a tenant swept in
the last interval is skipped, so N replicas sweep about once per interval between them. The
lease lapses on its own if a replica dies mid-sweep; re-sweeping is harmless (assignments are
idempotent)."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from dataclasses import dataclass
from functools import partial

from servicekit.clock import utcnow
from servicekit.context import current_tenant
from servicekit.runtime import Runtime
from servicekit.unit_of_work import Tx, UnitOfWork
from services.tagging.service.rule_evaluation import reconcile
from services.tagging.settings import TaggingSettings
from services.tagging.store.facts import FactsStore
from services.tagging.store.tag_rules import TagRuleStore

log = logging.getLogger("tagging.rule_sweep")


@dataclass
class RuleSweep:
    uow: UnitOfWork
    settings: TaggingSettings
    owner: str

    async def sweep_due_tenants(self) -> list[str]:
        """Sweep every tenant that is due and not being swept elsewhere; the ones swept."""
        swept = []
        for tenant in await TagRuleStore(self.uow.db).tenants_to_sweep():
            if await self.sweep_tenant(tenant):
                swept.append(tenant)
        return swept

    async def sweep_tenant(self, tenant: str) -> bool:
        store, started = TagRuleStore(self.uow.db), utcnow()
        if not await self._lease(store, tenant):
            return False
        token = current_tenant.set(tenant)
        try:
            after: str | None = None
            while True:
                batch = await FactsStore(self.uow.db).page(
                    tenant, after=after, limit=self.settings.rule_sweep_batch_size
                )
                if not batch:
                    break
                ids = [r.customer_id for r in batch]
                await self.uow.run(partial(self._evaluate, tenant=tenant, customer_ids=ids))
                after = ids[-1]
                # Renewed per batch: a big tenant may outlast one lease.
                await store.renew_sweep_lease(
                    tenant, self.owner, now=utcnow(), seconds=self.settings.rule_sweep_lease_seconds
                )
        finally:
            current_tenant.reset(token)
        await store.finish_sweep(tenant, self.owner, started_at=started)
        return True

    async def _lease(self, store: TagRuleStore, tenant: str) -> bool:
        s = self.settings
        return await store.take_sweep_lease(
            tenant,
            self.owner,
            now=utcnow(),
            seconds=s.rule_sweep_lease_seconds,
            interval=s.rule_sweep_interval_seconds,
        )

    async def _evaluate(self, tx: Tx, tenant: str, customer_ids: list[str]) -> None:
        # The facts are read again inside the transaction: an event may have changed them
        # since the page was read, and its own evaluation must not be undone by stale facts.
        now = utcnow()
        rules = await TagRuleStore(tx.db).active(tenant, session=tx.session)
        facts = FactsStore(tx.db)
        for customer_id in customer_ids:
            record = await facts.get(tenant, customer_id, session=tx.session)
            await reconcile(
                tx, tenant=tenant, customer_id=customer_id, record=record, now=now, rules=rules
            )


#: `runtime.state` key that overrides the interval at run time (tests use a short one).
INTERVAL_STATE = "tag_rules.sweep_interval_seconds"
#: How often the loop looks for due tenants: due-ness itself is the lease's business.
MAX_TICK_SECONDS = 5.0


def sweep_for(runtime: Runtime) -> RuleSweep:
    owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
    return RuleSweep(runtime.uow, runtime.settings, owner)  # type: ignore[arg-type]


async def run_rule_sweep(runtime: Runtime) -> None:
    """The worker's loop: sweep the due tenants, wait a tick, again; a failed round is logged
    and retried. A tenant is due once per interval, or at once after its rules change."""
    sweep = sweep_for(runtime)
    while True:
        interval = float(
            runtime.state.get(INTERVAL_STATE, sweep.settings.rule_sweep_interval_seconds)
        )
        sweep.settings.rule_sweep_interval_seconds = interval
        try:
            await sweep.sweep_due_tenants()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("tag rule sweep failed; retrying next round")
        await asyncio.sleep(min(interval, MAX_TICK_SECONDS))

"""The alert evaluator: reads each condition's inputs, asks the rules (domain/alerts.py),
and applies what they found (service/alerts.py).

It runs on every replica and is woken in process:
- by this replica's own changes (a budget top-up, split, approval or end: the API signals
  the budget it touched), evaluated at once whether or not this replica holds the lease;
- by what the replica's broker reader sees from every replica (claims, approvals, ends,
  coupons used or given back), acted on only by the lease holder, so N replicas do not all
  evaluate one change.
The lease holder also sweeps everything periodically (open alerts, budgets, batches with
recent claims, efficiency), which catches whatever no signal reached. Two replicas
evaluating one condition at once is safe: raising takes a unique key, updates and
resolutions are conditional."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from servicekit.clock import utcnow
from servicekit.mongo import Document
from servicekit.runtime import Runtime
from services.coupon.domain import alerts as rules
from services.coupon.domain.alerts import (
    AlertKind,
    EfficiencyPolicy,
    RecentRate,
    StockView,
    SubjectGmv,
    UpdatePolicy,
    alert_key,
)
from services.coupon.domain.budgets import Budget
from services.coupon.service.alert_hub import AlertHub
from services.coupon.service.alerts import AlertService
from services.coupon.service.policies import policy_book
from services.coupon.settings import CouponSettings
from services.coupon.store.alerts import (
    AlertStore,
    BudgetBlocks,
    EvaluatorLease,
    held_unissued,
)
from services.coupon.store.batches import BatchState, BatchStore
from services.coupon.store.budgets import BUDGETS, BudgetStore
from services.coupon.store.campaigns import CampaignStore
from services.coupon.store.stats import StatsStore

log = logging.getLogger("services.coupon.alerts")
MONITORING = "monitoring"
Subject = tuple[str, str]  # (tenant, id)


@dataclass
class AlertSignals:
    """What changed since the evaluator last looked, and the batches' recent claim rates
    (fed by the broker reader from every replica's claims)."""

    rate_window: float
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    budgets: set[Subject] = field(default_factory=set)
    batches: set[Subject] = field(default_factory=set)
    rates: dict[Subject, RecentRate] = field(default_factory=dict)
    #: Campaigns whose coupons were used (their budget's consumed share moved), and tenants
    #: where a used coupon was given back (that event names no campaign): what may set or
    #: lift an open budget alert's issuing block.
    spending: set[Subject] = field(default_factory=set)
    restoring: set[str] = field(default_factory=set)
    #: Whether this replica holds the sweep lease (acts on what others changed).
    leader: bool = False

    def budget(self, tenant: str, budget_id: str, *, seen_on_broker: bool = False) -> None:
        if seen_on_broker and not self.leader:
            return
        self.budgets.add((tenant, budget_id))
        self.wakeup.set()

    def spent(self, tenant: str, campaign_id: str) -> None:
        if self.leader:
            self.spending.add((tenant, campaign_id))
            self.wakeup.set()

    def restored(self, tenant: str) -> None:
        if self.leader:
            self.restoring.add(tenant)
            self.wakeup.set()

    def claimed(self, tenant: str, batch_id: str, at: datetime) -> None:
        subject = (tenant, batch_id)
        rate = self.rates.get(subject)
        if rate is None:
            rate = self.rates[subject] = RecentRate(self.rate_window)
        rate.add(at)
        if self.leader:
            self.batches.add(subject)
            self.wakeup.set()

    def rate(self, tenant: str, batch_id: str, now: datetime) -> tuple[int, float]:
        rate = self.rates.get((tenant, batch_id))
        if rate is None:
            return 0, 0.0
        return rate.count(now), rate.per_second(now)

    def forget_idle(self, now: datetime) -> None:
        for subject, rate in list(self.rates.items()):
            if rate.count(now) == 0:
                del self.rates[subject]

    def drain(self) -> tuple[set[Subject], set[Subject]]:
        budgets, batches = self.budgets, self.batches
        self.budgets, self.batches = set(), set()
        return budgets, batches

    def drain_spending(self) -> tuple[set[Subject], set[str]]:
        spending, restoring = self.spending, self.restoring
        self.spending, self.restoring = set(), set()
        return spending, restoring


@dataclass
class Monitoring:
    signals: AlertSignals
    hub: AlertHub


def monitoring(runtime: Runtime) -> Monitoring:
    """This replica's signals and stream hub, made on first use."""
    found = runtime.state.get(MONITORING)
    if found is None:
        settings = runtime.settings
        assert isinstance(settings, CouponSettings)
        found = Monitoring(
            AlertSignals(settings.stock_rate_window_seconds),
            AlertHub(settings.alert_stream_history),
        )
        runtime.state[MONITORING] = found
    return found


def alert_service(runtime: Runtime) -> AlertService:
    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    policy = UpdatePolicy(
        settings.alert_update_min_seconds, settings.alert_update_min_change_percent
    )
    return AlertService(runtime.uow, AlertStore(runtime.db), BudgetBlocks(runtime.db), policy)


class Evaluator:
    def __init__(self, runtime: Runtime, settings: CouponSettings) -> None:
        self.settings = settings
        self.signals = monitoring(runtime).signals
        self.alerts = alert_service(runtime)
        self.store = AlertStore(runtime.db)
        self.budgets = BudgetStore(runtime.db)
        self.batches = BatchStore(runtime.db)
        self.campaigns = CampaignStore(runtime.db)
        self.stats = StatsStore(runtime.db)
        self.db = runtime.db
        self.policies = policy_book(runtime)
        self.lease = EvaluatorLease(
            runtime.db, f"{socket.gethostname()}:{id(self):x}", settings.alert_lease_seconds
        )
        #: Campaign -> budget, budget -> owner: neither ever changes.
        self._budget_of: dict[Subject, str] = {}
        self._owner_of: dict[Subject, str] = {}
        self._batch_due: dict[Subject, float] = {}
        self._batch_last: dict[Subject, float] = {}
        self._next_efficiency = 0.0

    # ------------------------------------------------------------------ conditions

    async def budget(self, tenant: str, budget_id: str, now: datetime) -> None:
        budget = await self.budgets.get(tenant, budget_id)
        key = alert_key(AlertKind.BUDGET, "budget", budget_id)
        finding = rules.budget_finding(budget, now) if budget else None
        await self.alerts.apply(tenant, key, finding, now)

    async def batch(self, tenant: str, batch_id: str, now: datetime) -> None:
        key = alert_key(AlertKind.STOCK, "batch", batch_id)
        claims, per_second = self.signals.rate(tenant, batch_id, now)
        batch = await self.batches.get(tenant, batch_id)
        finding = None
        if batch is not None:
            budget_id = await self._budget_id(tenant, batch.campaign_id)
            view = StockView(
                batch_id=batch.id,
                name=batch.spec.name,
                stock=batch.spec.stock,
                left=batch.unleased + await held_unissued(self.db, tenant, batch_id),
                claim_until=batch.spec.claim_until,
                active=batch.state == BatchState.ACTIVE,
                budget_id=budget_id,
                owner=await self._owner(tenant, budget_id),
            )
            finding = rules.stock_finding(
                view, claims, per_second, now, min_claims=self.settings.stock_alert_min_claims
            )
        await self.alerts.apply(tenant, key, finding, now)

    async def efficiency(self, tenant: str, now: datetime) -> None:
        rows = await self._subject_rows(tenant, now)
        s = self.settings
        policy = EfficiencyPolicy(s.efficiency_min_peers, s.efficiency_min_subsidy,
                                  s.efficiency_margin_points)  # fmt: skip
        findings = {f.key: f for f in rules.efficiency_findings(rows, policy)}
        for key, finding in findings.items():
            await self.alerts.apply(tenant, key, finding, now)
        for open_tenant, key in await self.store.open_keys():
            if open_tenant == tenant and key.startswith("efficiency:") and key not in findings:
                await self.alerts.apply(tenant, key, None, now)

    async def _subject_rows(self, tenant: str, now: datetime) -> list[SubjectGmv]:
        today = now.astimezone((await self.policies.of(tenant)).zone).date()
        period = self.settings.efficiency_period_days
        current_from = today - timedelta(days=period - 1)
        base_from = current_from - timedelta(days=period)
        days = await self.stats.subject_days(tenant, base_from)
        rows: dict[tuple[str, str], dict] = {}
        for d in days:
            row = rows.setdefault((d["subject_kind"], d["subject_id"]), _blank(d))
            gmv = int(d.get("gmv_with", 0)) + int(d.get("gmv_without", 0))
            if date.fromisoformat(d["day"]) >= current_from:
                row["current_gmv"] += gmv
                row["current_with_coupon"] += int(d.get("gmv_with", 0))
                row["subsidy"] += int(d.get("subsidy", 0))
                for budget_id, amount in (d.get("subsidy_by_budget") or {}).items():
                    row["budgets"][budget_id] = row["budgets"].get(budget_id, 0) + amount
            else:
                row["base_gmv"] += gmv
        out = []
        for row in rows.values():
            budgets = row.pop("budgets")
            if budgets:
                row["budget_id"] = max(budgets, key=budgets.get)
                row["owner"] = await self._owner(tenant, row["budget_id"])
            out.append(SubjectGmv(**row))
        return out

    async def _budget_id(self, tenant: str, campaign_id: str) -> str | None:
        subject = (tenant, campaign_id)
        if subject not in self._budget_of:
            campaign = await self.campaigns.get(tenant, campaign_id)
            if campaign is None:
                return None
            self._budget_of[subject] = campaign.budget_id
        return self._budget_of[subject]

    async def _owner(self, tenant: str, budget_id: str | None) -> str | None:
        if budget_id is None:
            return None
        subject = (tenant, budget_id)
        if subject not in self._owner_of:
            budget = await self.budgets.get(tenant, budget_id)
            if budget is None:
                return None
            self._owner_of[subject] = budget.owner
        return self._owner_of[subject]

    # ----------------------------------------------------------------------- loop

    async def run(self) -> None:
        next_sweep = 0.0
        try:
            while True:
                wait = max(0.0, min([next_sweep, *self._batch_due.values()]) - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.signals.wakeup.wait(), wait)
                self.signals.wakeup.clear()
                await self.evaluate_signalled()
                if time.monotonic() >= next_sweep:
                    await _logged(self.sweep(), "alert sweep")
                    next_sweep = time.monotonic() + self.settings.alert_sweep_seconds
        finally:
            with contextlib.suppress(Exception):
                await self.lease.release()

    async def evaluate_signalled(self) -> None:
        budgets, batches = self.signals.drain()
        try:
            budgets |= await self._spending_budgets(*self.signals.drain_spending())
        except Exception:  # the sweep judges every budget anyway
            log.exception("finding the budgets whose spending moved failed")
        now = utcnow()
        for tenant, budget_id in sorted(budgets):
            await _logged(self.budget(tenant, budget_id, now), "budget alert")
        # A batch is evaluated at most every `stock_evaluate_min_seconds`: in a flash sale
        # every fetched batch of claims signals it; later signals wait for the pause's end.
        mono = time.monotonic()
        pause = self.settings.stock_evaluate_min_seconds
        for subject in batches:
            due = self._batch_last.get(subject, -pause) + pause
            self._batch_due[subject] = min(self._batch_due.get(subject, due), due)
        for subject, due in list(self._batch_due.items()):
            if due <= mono:
                del self._batch_due[subject]
                self._batch_last[subject] = mono
                await _logged(self.batch(*subject, now), "stock alert")

    async def _spending_budgets(self, campaigns: set[Subject], tenants: set[str]) -> set[Subject]:
        """The budgets with an open alert among those whose consumption moved: spending
        changes no committed share, so only an open alert's issuing block can follow it
        (one read of the open alerts, not one per used coupon)."""
        if not campaigns and not tenants:
            return set()
        alerted = {
            (t, k.split(":", 2)[2]) for t, k in await self.store.open_keys()
            if k.startswith("budget:")
        }  # fmt: skip
        found = {(t, b) for t, b in alerted if t in tenants}
        for tenant, campaign_id in campaigns:
            budget_id = await self._budget_id(tenant, campaign_id)
            if (tenant, budget_id) in alerted:
                found.add((tenant, str(budget_id)))
        return found

    async def sweep(self) -> None:
        now = utcnow()
        self.signals.forget_idle(now)  # every replica tracks rates: any may lead next
        self.signals.leader = await self.lease.hold(now)
        if not self.signals.leader:
            return
        open_keys = await self.store.open_keys()
        await self._sweep_budgets(now, open_keys)
        batches = {(t, k.split(":", 2)[2]) for t, k in open_keys if k.startswith("stock:")}
        for tenant, batch_id in sorted(batches | set(self.signals.rates)):
            await _logged(self.batch(tenant, batch_id, now), "stock alert")
        pause = self.settings.stock_evaluate_min_seconds
        mono = time.monotonic()
        self._batch_last = {k: t for k, t in self._batch_last.items() if mono - t < pause}
        if time.monotonic() >= self._next_efficiency:
            self._next_efficiency = time.monotonic() + self.settings.efficiency_sweep_seconds
            await self._sweep_efficiency(now, open_keys)

    async def _sweep_budgets(self, now: datetime, open_keys: set[tuple[str, str]]) -> None:
        """Every current budget is judged from the one read that lists them; only those
        whose alert must change cost more."""
        open_budgets = {(t, k) for t, k in open_keys if k.startswith("budget:")}
        seen: set[tuple[str, str]] = set()
        for doc in await self._current_budgets(now):
            budget = Budget.model_validate({**doc, "id": doc["_id"]})
            key = alert_key(AlertKind.BUDGET, "budget", budget.id)
            seen.add((doc["tenant"], key))
            finding = rules.budget_finding(budget, now)
            if finding is not None or (doc["tenant"], key) in open_budgets:
                await _logged(self.alerts.apply(doc["tenant"], key, finding, now), "budget alert")
        for tenant, key in sorted(open_budgets - seen):  # ended long ago, or gone
            await _logged(self.budget(tenant, key.split(":", 2)[2], now), "budget alert")

    async def _sweep_efficiency(self, now: datetime, open_keys: set[tuple[str, str]]) -> None:
        period = self.settings.efficiency_period_days
        # A day more than the periods: a tenant's day may start up to 14 hours before UTC's.
        since = now.date() - timedelta(days=2 * period + 1)
        tenants = set(await self.stats.tenants_since(since))
        tenants |= {t for t, k in open_keys if k.startswith("efficiency:")}
        for tenant in sorted(tenants):
            await _logged(self.efficiency(tenant, now), "efficiency alerts")

    async def _current_budgets(self, now: datetime) -> list[Document]:
        """Budgets whose period is running, or ended within a day (their alert resolves)."""
        return await self.db[BUDGETS].find({"ends_at": {"$gt": now - timedelta(days=1)}}).to_list()


def _blank(day: Document) -> dict:
    return {
        "subject_kind": day["subject_kind"],
        "subject_id": day["subject_id"],
        "group": day.get("group") or "",
        "base_gmv": 0,
        "current_gmv": 0,
        "current_with_coupon": 0,
        "subsidy": 0,
        "budgets": {},
    }


async def _logged(work: Awaitable[object], what: str) -> None:
    """One condition failing must not stop the others; the next round tries again."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("%s evaluation failed; the next round retries", what)


async def run_evaluator(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    await Evaluator(runtime, settings).run()


__all__ = ["AlertSignals", "Evaluator", "Monitoring", "monitoring", "run_evaluator"]

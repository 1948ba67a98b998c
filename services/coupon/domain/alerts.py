"""Ops alerts (预警): the conditions that raise them and the lifecycle they follow.

An alert is raised once per open condition, identified by its key (kind and subject):
while the condition holds, the same alert is updated (only when its measures moved enough,
so ops are not paged by noise), acknowledged by someone, and resolved when the condition
clears (or by hand). Everything here is pure: the evaluator reads, asks these rules, and
writes what they decide.

- budget: the committed share of a budget (allocated, reserved and consumed) reached its
  highest alert threshold: its remaining is at or below the line. While raised, new
  campaign approvals under it are blocked. Issuing (claims, grants, every channel) is
  blocked only while the CONSUMED share (used coupons' subsidy) has reached that threshold
  too: a reservation is what funds its campaign's coupons, so the approval that commits
  the budget past its line must not stop that very campaign from issuing. Both blocks last
  until a top-up lifts the budget back above the line (or, for issuing, lifts
  `amount - consumed` above it).
- stock: at the batch's recent issuing rate its stock runs out before its claim window
  ends (or already has).
- efficiency: a merchant or product that got subsidy grew its GMV no more than comparable
  ones that got none (see `efficiency_findings`).
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from services.coupon.domain.budgets import Budget, committed


class AlertKind(StrEnum):
    STOCK = "stock"
    BUDGET = "budget"
    EFFICIENCY = "efficiency"


class AlertState(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


OPEN_STATES = (AlertState.RAISED, AlertState.ACKNOWLEDGED)


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class Finding(BaseModel):
    """A condition that holds now, with what ops need to judge it."""

    kind: AlertKind
    subject_kind: str
    subject_id: str
    severity: Severity
    title: str
    detail: str
    measures: dict[str, float]
    budget_id: str | None = None
    owner: str | None = None
    #: Budget alerts: whether issuing is blocked too (not only approvals); None otherwise.
    blocks_issuing: bool | None = None

    @property
    def key(self) -> str:
        return alert_key(self.kind, self.subject_kind, self.subject_id)


def alert_key(kind: AlertKind, subject_kind: str, subject_id: str) -> str:
    return f"{kind}:{subject_kind}:{subject_id}"


class Alert(BaseModel):
    id: str
    key: str
    kind: AlertKind
    subject_kind: str
    subject_id: str
    severity: Severity
    title: str
    detail: str
    measures: dict[str, float]
    budget_id: str | None = None
    owner: str | None = None
    #: Budget alerts: whether issuing is blocked too. None on other kinds, and on budget
    #: alerts raised before the two blocks were told apart (their next update sets it).
    blocks_issuing: bool | None = None
    state: AlertState
    raised_at: datetime
    updated_at: datetime
    updates: int = 0
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None


def raised(alert_id: str, finding: Finding, now: datetime) -> Alert:
    return Alert(
        id=alert_id,
        key=finding.key,
        state=AlertState.RAISED,
        raised_at=now,
        updated_at=now,
        **finding.model_dump(),
    )


@dataclass(frozen=True)
class UpdatePolicy:
    """When an open alert's measures are worth an update: at least `min_seconds` after the
    last one, and some measure moved by at least `min_change_percent` of its old value (or
    the severity or the issuing block changed, which always counts)."""

    min_seconds: float = 10.0
    min_change_percent: float = 10.0


def worth_update(alert: Alert, finding: Finding, now: datetime, policy: UpdatePolicy) -> bool:
    if finding.severity != alert.severity or finding.blocks_issuing != alert.blocks_issuing:
        return True  # what ops are told, or what is blocked, changed: at once
    if now - alert.updated_at < timedelta(seconds=policy.min_seconds):
        return False
    return any(
        _moved(alert.measures.get(name), value, policy.min_change_percent)
        for name, value in finding.measures.items()
    )


def _moved(old: float | None, new: float, percent: float) -> bool:
    if old is None:
        return True
    if old == 0:
        return new != 0
    return abs(new - old) * 100 >= abs(old) * percent


# ---------------------------------------------------------------------------- budget


def budget_line(budget: Budget) -> int:
    """The amount at or below which the budget alert holds: what is left once the committed
    share reaches the budget's highest alert threshold."""
    top = max(budget.alert_thresholds, default=100)
    return budget.amount * (100 - top) // 100


def _watched(budget: Budget, now: datetime) -> bool:
    """Thresholds set and the period not over: an ended budget blocks nothing."""
    return bool(budget.alert_thresholds) and now < budget.ends_at


def _reached(part: int, budget: Budget) -> bool:
    """`part` of the amount is at or past the highest threshold, i.e. `amount - part` is
    at or below the line (the same test, in integers)."""
    return part * 100 >= max(budget.alert_thresholds) * budget.amount


def approvals_blocked(budget: Budget, now: datetime) -> bool:
    """No new campaign approval: the committed share reached the line (the budget alert)."""
    return _watched(budget, now) and _reached(committed(budget), budget)


def issuing_blocked(budget: Budget, now: datetime) -> bool:
    """No issuing under the budget: the money actually spent on used coupons reached the
    line (amount - consumed <= line). Reserved money does not count: it funds the coupons
    of campaigns already approved. Implies `approvals_blocked` (consumed <= committed)."""
    return _watched(budget, now) and _reached(budget.consumed, budget)


def budget_finding(budget: Budget, now: datetime) -> Finding | None:
    """The budget alert, while the committed share is at or past the highest threshold;
    `blocks_issuing` says whether the consumed share is too."""
    if not approvals_blocked(budget, now):
        return None
    top = max(budget.alert_thresholds)
    spent = committed(budget)
    line = budget_line(budget)
    blocks_issuing = issuing_blocked(budget, now)
    blocked = (
        "new campaign approvals and issuing under this budget are blocked"
        if blocks_issuing
        else "new campaign approvals under this budget are blocked (its campaigns still "
        f"issue: {budget.consumed} is consumed)"
    )
    return Finding(
        kind=AlertKind.BUDGET,
        subject_kind="budget",
        subject_id=budget.id,
        severity=Severity.CRITICAL,
        title=f"Budget {budget.name} is {spent * 100 // budget.amount}% committed",
        detail=(
            f"{budget.remaining} of {budget.amount} remains, at or below the alert line "
            f"{line} ({top}% committed): {blocked} until it is topped up"
        ),
        measures={
            "amount": budget.amount,
            "committed": spent,
            "consumed": budget.consumed,
            "remaining": budget.remaining,
            "line": line,
            "committed_percent": round(spent * 100 / budget.amount, 2),
            "consumed_percent": round(budget.consumed * 100 / budget.amount, 2),
        },
        budget_id=budget.id,
        owner=budget.owner,
        blocks_issuing=blocks_issuing,
    )


# ----------------------------------------------------------------------------- stock


class RecentRate:
    """Claims of one batch in a sliding window of `window` seconds, by claim time, kept as
    per-second counts: the batch's recent issuing rate."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._seconds: deque[tuple[int, int]] = deque()

    def add(self, at: datetime, count: int = 1) -> None:
        second = int(at.timestamp())
        if self._seconds and self._seconds[-1][0] == second:
            self._seconds[-1] = (second, self._seconds[-1][1] + count)
        elif self._seconds and self._seconds[-1][0] > second:
            self._insert(second, count)  # a late event (another partition): rare
        else:
            self._seconds.append((second, count))

    def _insert(self, second: int, count: int) -> None:
        items = dict(self._seconds)
        items[second] = items.get(second, 0) + count
        self._seconds = deque(sorted(items.items()))

    def count(self, now: datetime) -> int:
        start = now.timestamp() - self.window
        while self._seconds and self._seconds[0][0] < start - 1:
            self._seconds.popleft()
        return sum(n for s, n in self._seconds if s >= start)

    def per_second(self, now: datetime) -> float:
        return self.count(now) / self.window


@dataclass(frozen=True)
class StockView:
    """What the stock rule needs of a batch."""

    batch_id: str
    name: str
    stock: int
    #: Stock not issued yet: not leased to any replica, or leased and not issued.
    left: int
    claim_until: datetime
    active: bool
    budget_id: str | None = None
    owner: str | None = None


def sell_out_at(left: int, per_second: float, now: datetime) -> datetime | None:
    """When `left` runs out at `per_second`; None when nothing is being claimed."""
    if left <= 0:
        return now
    if per_second <= 0:
        return None
    return now + timedelta(seconds=left / per_second)


def stock_finding(
    view: StockView, claims: int, per_second: float, now: datetime, *, min_claims: int
) -> Finding | None:
    """The stock alert: claimed fast enough (at least `min_claims` in the window, so a
    handful of claims projects nothing) that the stock runs out before the window ends."""
    if not view.active or now >= view.claim_until:
        return None
    if view.left > 0 and claims < min_claims:
        return None
    out = sell_out_at(view.left, per_second, now)
    if out is None or out >= view.claim_until:
        return None
    early = view.claim_until - out
    sold_out = view.left <= 0
    return Finding(
        kind=AlertKind.STOCK,
        subject_kind="batch",
        subject_id=view.batch_id,
        severity=Severity.CRITICAL if sold_out else Severity.WARNING,
        title=(
            f"Batch {view.name} sold out before its claim window ends"
            if sold_out
            else f"Batch {view.name} will sell out before its claim window ends"
        ),
        detail=(
            f"{view.left} of {view.stock} left, claimed at {per_second:.2f}/s: "
            f"runs out {int(early.total_seconds())} s before the window ends"
        ),
        measures={
            "stock": view.stock,
            "left": max(view.left, 0),
            "claims_per_second": round(per_second, 3),
            "seconds_to_sell_out": round((out - now).total_seconds(), 1),
            "seconds_before_window_end": round(early.total_seconds(), 1),
        },
        budget_id=view.budget_id,
        owner=view.owner,
    )


# ------------------------------------------------------------------------ efficiency


class SubjectGmv(BaseModel):
    """A merchant's or product's GMV in the base and the current period, and the subsidy
    its orders got in the current one."""

    subject_kind: str  # merchant | product
    subject_id: str
    #: Products are compared within their category; merchants with every merchant.
    group: str = ""
    base_gmv: int
    current_gmv: int
    current_with_coupon: int = 0
    subsidy: int = 0
    budget_id: str | None = None
    owner: str | None = None

    def growth(self) -> float | None:
        if self.base_gmv <= 0:
            return None
        return (self.current_gmv - self.base_gmv) / self.base_gmv


@dataclass(frozen=True)
class EfficiencyPolicy:
    #: Fewest comparable unsubsidised subjects a benchmark is drawn from.
    min_peers: int = 3
    #: Subsidy below this (minor units) in the period is too small to judge.
    min_subsidy: int = 1
    #: By how many percentage points a subsidised subject must beat the benchmark.
    margin_points: float = 0.0


def efficiency_findings(rows: list[SubjectGmv], policy: EfficiencyPolicy) -> list[Finding]:
    """Subsidised subjects whose GMV growth (current period over base period) does not beat
    the median growth of comparable subjects without subsidy.

    Comparable, kept simple: the same kind (merchant or product), with GMV in the base
    period (growth is defined), that got no subsidy in the current period; products only
    within their category when it has enough of them (`min_peers`), else all products."""
    findings = []
    for kind in sorted({r.subject_kind for r in rows}):
        mine = [r for r in rows if r.subject_kind == kind]
        unsubsidised = [r for r in mine if r.subsidy <= 0 and r.growth() is not None]
        for row in mine:
            found = _inefficient(row, unsubsidised, policy)
            if found is not None:
                findings.append(found)
    return findings


def _peers(row: SubjectGmv, unsubsidised: list[SubjectGmv], policy: EfficiencyPolicy) -> list:
    same_group = [r for r in unsubsidised if r.group == row.group]
    return same_group if len(same_group) >= policy.min_peers else unsubsidised


def _inefficient(
    row: SubjectGmv, unsubsidised: list[SubjectGmv], policy: EfficiencyPolicy
) -> Finding | None:
    growth = row.growth()
    if row.subsidy < policy.min_subsidy or growth is None:
        return None
    peers = _peers(row, unsubsidised, policy)
    if len(peers) < policy.min_peers:
        return None
    benchmark = statistics.median(p.growth() or 0.0 for p in peers)
    if growth * 100 > benchmark * 100 + policy.margin_points:
        return None
    return Finding(
        kind=AlertKind.EFFICIENCY,
        subject_kind=row.subject_kind,
        subject_id=row.subject_id,
        severity=Severity.WARNING,
        title=f"Subsidy to {row.subject_kind} {row.subject_id} does not beat comparable ones",
        detail=(
            f"GMV grew {growth * 100:.1f}% with {row.subsidy} of subsidy; {len(peers)} "
            f"comparable {row.subject_kind}s without subsidy grew {benchmark * 100:.1f}% "
            "(median)"
        ),
        measures={
            "growth_percent": round(growth * 100, 2),
            "benchmark_percent": round(benchmark * 100, 2),
            "subsidy": row.subsidy,
            "base_gmv": row.base_gmv,
            "current_gmv": row.current_gmv,
            "current_gmv_with_coupon": row.current_with_coupon,
            "peers": len(peers),
        },
        budget_id=row.budget_id,
        owner=row.owner,
    )

"""Alert lifecycle use cases: apply what an evaluation found (raise, update or resolve),
acknowledge, resolve by hand. Each change is one transaction that writes the alert and
emits its contract event through the outbox; a budget alert sets or lifts its budget's
blocks in the same transaction: approvals while it is open, issuing while it says
`blocks_issuing` (domain/alerts.py).

A condition resolved by hand while it still holds is raised again (as a new alert) at the
next evaluation: resolving says "handled", it does not silence the condition."""

from __future__ import annotations

import uuid
from datetime import datetime

from contracts.coupon import (
    AlertAcknowledged,
    AlertEvent,
    AlertRaised,
    AlertResolved,
    AlertUpdated,
)
from servicekit.errors import Conflict, NotFound
from servicekit.pagination import PageRequest
from servicekit.unit_of_work import Tx, UnitOfWork
from services.coupon.domain import alerts as rules
from services.coupon.domain.alerts import (
    OPEN_STATES,
    Alert,
    AlertKind,
    AlertState,
    Finding,
    UpdatePolicy,
)
from services.coupon.store.alerts import AlertExists, AlertStore, BudgetBlocks

SYSTEM = "system"


def alert_event(cls: type[AlertEvent], alert: Alert, at: datetime, **extra: str) -> AlertEvent:
    return cls(
        alert_id=alert.id,
        kind=str(alert.kind),
        severity=str(alert.severity),
        subject_kind=alert.subject_kind,
        subject_id=alert.subject_id,
        budget_id=alert.budget_id,
        owner=alert.owner,
        title=alert.title,
        detail=alert.detail,
        measures=alert.measures,
        at=at,
        **extra,
    )


class AlertService:
    def __init__(
        self, uow: UnitOfWork, store: AlertStore, blocks: BudgetBlocks, policy: UpdatePolicy
    ) -> None:
        self.uow = uow
        self.store = store
        self.blocks = blocks
        self.policy = policy

    # ------------------------------------------------------------------ evaluation

    async def apply(
        self, tenant: str, key: str, finding: Finding | None, now: datetime
    ) -> Alert | None:
        """Bring the condition's alert in line with `finding` (None: the condition is
        clear). Cheap when nothing changes: one read, no transaction."""
        current = await self.store.open_for(tenant, key)
        if finding is None and current is None:
            return None
        if (
            finding is not None
            and current is not None
            and not rules.worth_update(current, finding, now, self.policy)
        ):
            return current

        async def work(tx: Tx) -> Alert | None:
            alert = await self.store.open_for(tenant, key, tx.session)
            if finding is None:
                return await self._resolve(tx, tenant, alert, SYSTEM, now) if alert else None
            if alert is None:
                return await self._raise(tx, tenant, finding, now)
            return await self._update(tx, tenant, alert, finding, now)

        try:
            return await self.uow.run(work)
        except AlertExists:
            return None  # another evaluator raised it meanwhile

    async def _raise(self, tx: Tx, tenant: str, finding: Finding, now: datetime) -> Alert:
        alert = rules.raised(f"alr_{uuid.uuid4().hex[:16]}", finding, now)
        await self.store.add(tenant, alert, tx.session)
        if alert.kind == AlertKind.BUDGET:
            await self._block(tx, tenant, alert)
        await tx.emit(alert_event(AlertRaised, alert, now), tenant=tenant)
        return alert

    async def _update(
        self, tx: Tx, tenant: str, alert: Alert, finding: Finding, now: datetime
    ) -> Alert:
        if not rules.worth_update(alert, finding, now, self.policy):
            return alert
        fields = {
            "severity": str(finding.severity),
            "title": finding.title,
            "detail": finding.detail,
            "measures": finding.measures,
            "blocks_issuing": finding.blocks_issuing,
            "updated_at": now,
        }
        changed = await self.store.change(
            tenant, alert.id, OPEN_STATES, fields, tx.session, count_update=True
        )
        if changed is None:
            return alert
        if changed.kind == AlertKind.BUDGET and finding.blocks_issuing != alert.blocks_issuing:
            await self._block(tx, tenant, changed)  # spending crossed the line, or back
        await tx.emit(alert_event(AlertUpdated, changed, now), tenant=tenant)
        return changed

    async def _resolve(
        self, tx: Tx, tenant: str, alert: Alert, by: str, now: datetime
    ) -> Alert | None:
        fields = {"state": str(AlertState.RESOLVED), "resolved_by": by, "resolved_at": now}
        resolved = await self.store.change(tenant, alert.id, OPEN_STATES, fields, tx.session)
        if resolved is None:
            return None
        await self.store.close(tenant, alert.key, tx.session)
        if alert.kind == AlertKind.BUDGET:
            await self.blocks.set(
                tenant, alert.subject_id, tx.session, approvals=False, issuing=False
            )
        await tx.emit(alert_event(AlertResolved, resolved, now, resolved_by=by), tenant=tenant)
        return resolved

    async def _block(self, tx: Tx, tenant: str, alert: Alert) -> None:
        """An open budget alert blocks approvals, and issuing as it says."""
        issuing = bool(alert.blocks_issuing)
        await self.blocks.set(tenant, alert.subject_id, tx.session, approvals=True, issuing=issuing)

    # ------------------------------------------------------------------------- ops

    async def acknowledge(self, tenant: str, alert_id: str, by: str, now: datetime) -> Alert:
        """Someone took it on. Acknowledging again answers the alert as it is."""

        async def work(tx: Tx) -> Alert:
            alert = await self._get(tx, tenant, alert_id)
            if alert.state == AlertState.ACKNOWLEDGED:
                return alert
            if alert.state == AlertState.RESOLVED:
                raise Conflict("the alert is resolved", code="alert_resolved")
            fields = {
                "state": str(AlertState.ACKNOWLEDGED),
                "acknowledged_by": by,
                "acknowledged_at": now,
            }
            acked = await self.store.change(
                tenant, alert_id, (AlertState.RAISED,), fields, tx.session
            )
            if acked is None:
                raise Conflict("the alert changed meanwhile; retry", code="alert_state")
            await tx.emit(
                alert_event(AlertAcknowledged, acked, now, acknowledged_by=by), tenant=tenant
            )
            return acked

        return await self.uow.run(work)

    async def resolve(self, tenant: str, alert_id: str, by: str, now: datetime) -> Alert:
        """Resolve by hand (a budget alert lifts its blocks). Resolving again answers the
        alert as it is."""

        async def work(tx: Tx) -> Alert:
            alert = await self._get(tx, tenant, alert_id)
            if alert.state == AlertState.RESOLVED:
                return alert
            resolved = await self._resolve(tx, tenant, alert, by, now)
            if resolved is None:
                raise Conflict("the alert changed meanwhile; retry", code="alert_state")
            return resolved

        return await self.uow.run(work)

    async def _get(self, tx: Tx, tenant: str, alert_id: str) -> Alert:
        alert = await self.store.get(tenant, alert_id, tx.session)
        if alert is None:
            raise NotFound(f"no alert {alert_id}", code="alert_not_found")
        return alert

    async def get(self, tenant: str, alert_id: str) -> Alert:
        alert = await self.store.get(tenant, alert_id)
        if alert is None:
            raise NotFound(f"no alert {alert_id}", code="alert_not_found")
        return alert

    async def page(
        self,
        tenant: str,
        page: PageRequest,
        states: list[AlertState] | None,
        kind: AlertKind | None,
    ) -> tuple[list[Alert], str | None]:
        return await self.store.page(tenant, page, states, kind)

"""Budget use cases: open (or split from a parent), top up, read with the ledger.

Every movement is one guarded update of the budget plus its ledger entry, in one
transaction; a budget crossing an alert threshold raises `coupon.budget_alert_raised.v1`."""

from __future__ import annotations

import uuid

from contracts.coupon import BudgetAlertRaised
from servicekit.clock import utcnow
from servicekit.errors import Conflict, InvalidInput, NotFound
from servicekit.pagination import PageRequest
from servicekit.unit_of_work import Tx, UnitOfWork
from services.coupon.domain import budgets as rules
from services.coupon.domain.budgets import Budget, BudgetDraft, LedgerEntry, Movement
from services.coupon.store.budgets import BudgetStore


class BudgetService:
    def __init__(self, uow: UnitOfWork, store: BudgetStore) -> None:
        self.uow = uow
        self.store = store

    async def open(self, tenant: str, draft: BudgetDraft) -> Budget:
        budget = rules.opened(f"bud_{uuid.uuid4().hex[:16]}", draft, now=utcnow())

        async def work(tx: Tx) -> Budget:
            if draft.parent_id is not None:
                await self._split_from(tx, tenant, draft, budget.id)
            await self.store.add(tenant, budget, tx.session)
            await self.store.record(tenant, budget.id, Movement.OPENED, budget.amount, tx.session)
            return budget

        return await self.uow.run(work)

    async def _split_from(self, tx: Tx, tenant: str, draft: BudgetDraft, child_id: str) -> None:
        parent = await self.store.get(tenant, draft.parent_id or "", tx.session)
        if parent is None:
            raise InvalidInput("no such parent budget", field="parent_id", code="budget_not_found")
        if draft.starts_at < parent.starts_at or draft.ends_at > parent.ends_at:
            raise InvalidInput("a sub-budget's period lies within its parent's", field="starts_at")
        moved = await self.store.move(
            tenant, parent.id, Movement.ALLOCATE, draft.amount, tx.session, note=child_id
        )
        if moved is None:
            raise Conflict(
                f"the parent budget has {parent.remaining} remaining, less than {draft.amount}",
                code="budget_exceeded",
            )
        await raise_alerts(tx, tenant, self.store, moved)

    async def top_up(self, tenant: str, budget_id: str, amount: int, note: str | None) -> Budget:
        async def work(tx: Tx) -> Budget:
            moved = await self.store.move(
                tenant, budget_id, Movement.TOP_UP, amount, tx.session, note=note
            )
            if moved is None:
                raise NotFound(f"no budget {budget_id}", code="budget_not_found")
            return moved

        return await self.uow.run(work)

    async def get(self, tenant: str, budget_id: str) -> Budget:
        budget = await self.store.get(tenant, budget_id)
        if budget is None:
            raise NotFound(f"no budget {budget_id}", code="budget_not_found")
        return budget

    async def ledger(self, tenant: str, budget_id: str) -> tuple[Budget, list[LedgerEntry]]:
        budget = await self.get(tenant, budget_id)
        return budget, await self.store.entries(tenant, budget_id)

    async def page(self, tenant: str, page: PageRequest) -> tuple[list[Budget], str | None]:
        return await self.store.page(tenant, page)


async def raise_alerts(tx: Tx, tenant: str, store: BudgetStore, budget: Budget) -> None:
    """Alert once per threshold the committed share has reached (预算预警)."""
    crossed = rules.crossed_thresholds(budget)
    if not crossed:
        return
    await store.mark_alerted(tenant, budget.id, crossed, tx.session)
    now = utcnow()
    await tx.emit(
        *(
            BudgetAlertRaised(
                budget_id=budget.id,
                threshold_percent=t,
                committed=rules.committed(budget),
                amount=budget.amount,
                raised_at=now,
            )
            for t in crossed
        ),
        tenant=tenant,
    )

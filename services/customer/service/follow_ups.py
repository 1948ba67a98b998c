"""Follow-up use cases: record a contact, list them, work an advisor's reminders, and
publish the reminders that fall due."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pymongo.errors import ConnectionFailure, PyMongoError

from contracts.customer import FollowUpReminderDue
from servicekit.clock import utcnow
from servicekit.context import current_tenant
from servicekit.errors import Conflict, NotFound
from servicekit.pagination import PageRequest
from servicekit.unit_of_work import Tx, UnitOfWork
from services.customer.domain import follow_ups as rules
from services.customer.domain.follow_ups import FollowUp, FollowUpDraft, Reminder
from services.customer.store.customers import CustomerStore
from services.customer.store.follow_ups import DueReminder, FollowUpStore

log = logging.getLogger("services.customer.follow_ups")
#: How often closing a reminder re-reads it after losing a race (to the worker sending it).
MAX_ATTEMPTS = 5
Transition = Callable[[Reminder], Reminder | None]


class FollowUpService:
    def __init__(self, uow: UnitOfWork, store: FollowUpStore, customers: CustomerStore) -> None:
        self.uow = uow
        self.store = store
        self.customers = customers

    async def record(
        self, tenant: str, customer_id: str, draft: FollowUpDraft, *, recorded_by: str
    ) -> FollowUp:
        customer = await self.customers.get(tenant, customer_id)
        if customer is None:
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")
        follow_up = rules.record(
            draft,
            tenant=tenant,
            customer_id=customer.id,
            customer_owner=customer.owner_id,
            recorded_by=recorded_by,
            at=utcnow(),
        )
        # One document and no event: a single insert is atomic without a transaction.
        await self.store.add(follow_up)
        return follow_up

    async def page(
        self, tenant: str, customer_id: str, page: PageRequest
    ) -> tuple[list[FollowUp], str | None]:
        if await self.customers.get(tenant, customer_id) is None:
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")
        return await self.store.page_of_customer(tenant, customer_id, page)

    async def open_reminders(
        self, tenant: str, owner_id: str, due_before: datetime | None, page: PageRequest
    ) -> tuple[list[FollowUp], str | None]:
        return await self.store.open_reminders(tenant, owner_id, due_before, page)

    async def complete_reminder(self, tenant: str, follow_up_id: str, *, by: str) -> FollowUp:
        return await self._close(
            tenant, follow_up_id, lambda r: rules.complete(r, by=by, at=utcnow())
        )

    async def cancel_reminder(self, tenant: str, follow_up_id: str, *, by: str) -> FollowUp:
        return await self._close(
            tenant, follow_up_id, lambda r: rules.cancel(r, by=by, at=utcnow())
        )

    async def _close(self, tenant: str, follow_up_id: str, transition: Transition) -> FollowUp:
        """Apply `transition` over the state read; when the worker sent the reminder in
        between, read it again and decide again."""
        for _ in range(MAX_ATTEMPTS):
            follow_up = await self._with_reminder(tenant, follow_up_id)
            assert follow_up.reminder is not None
            closed = transition(follow_up.reminder)
            if closed is None:
                return follow_up
            read_state = follow_up.reminder.state
            if await self.store.replace_reminder(follow_up, closed, read_state=read_state):
                return follow_up.model_copy(update={"reminder": closed})
        raise Conflict("the reminder kept changing; retry the request", code="reminder_contended")

    async def _with_reminder(self, tenant: str, follow_up_id: str) -> FollowUp:
        follow_up = await self.store.get(tenant, follow_up_id)
        if follow_up is None:
            raise NotFound(f"no follow-up {follow_up_id}", code="follow_up_not_found")
        if follow_up.reminder is None:
            raise NotFound(f"follow-up {follow_up_id} has no reminder", code="reminder_not_found")
        return follow_up

    async def publish_due_reminders(self, *, limit: int) -> tuple[int, int]:
        """One round of the reminder worker: publish up to `limit` due reminders, each in a
        transaction of its own. Returns (examined, published)."""
        due = await self.store.due_reminders(utcnow(), limit)
        published = 0
        for reminder in due:
            token = current_tenant.set(reminder.tenant)  # so the logs carry the tenant
            try:
                published += await self._publish(reminder)
            finally:
                current_tenant.reset(token)
        return len(due), published

    async def _publish(self, due: DueReminder) -> bool:
        """Claim the reminder (pending -> sent) and emit its event in one transaction: with
        several replicas each reminder is published exactly once."""
        try:
            return await self.uow.run(lambda tx: self._claim_and_emit(tx, due))
        except ConnectionFailure:
            raise  # the store is unreachable: end the round, the next one retries
        except PyMongoError:
            # This reminder only (it stays pending, the next round retries it), so one
            # document the store refuses cannot hold back every reminder due after it.
            log.exception(
                "a due reminder could not be published; retried next round",
                extra={"follow_up_id": due.follow_up_id},
            )
            return False
        except Exception as exc:
            # Not the store: the reminder itself cannot become an event, and never will.
            log.exception(
                "a due reminder cannot be published; parked as failed",
                extra={"follow_up_id": due.follow_up_id},
            )
            await self.store.park_failed(due.follow_up_id, f"{type(exc).__name__}: {exc}"[:500])
            return False

    async def _claim_and_emit(self, tx: Tx, due: DueReminder) -> bool:
        follow_up = await self.store.claim_due(due.follow_up_id, utcnow(), tx.session)
        if follow_up is None:
            return False  # another replica sent it, or the advisor closed it first
        await tx.emit(_reminder_due(follow_up), tenant=due.tenant)
        return True


def _reminder_due(follow_up: FollowUp) -> FollowUpReminderDue:
    reminder = follow_up.reminder
    if reminder is None:
        raise ValueError(f"follow-up {follow_up.id} has no reminder")
    return FollowUpReminderDue(
        customer_id=follow_up.customer_id,
        follow_up_id=follow_up.id,
        owner_id=reminder.owner_id,
        due_at=reminder.remind_at,
        note=reminder.note,
    )

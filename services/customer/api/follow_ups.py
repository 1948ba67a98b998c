"""Follow-up routes: an advisor records contacts with a customer and works their reminders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

from servicekit.context import ACTOR_ID_PATTERN, ActorDep, TenantDep
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep
from services.customer.domain.follow_ups import (
    NOTE_MAX,
    NOTES_MAX,
    FollowUp,
    FollowUpDraft,
    FollowUpKind,
    ReminderDraft,
)
from services.customer.service.follow_ups import FollowUpService
from services.customer.store.customers import CustomerStore
from services.customer.store.follow_ups import FollowUpStore

router = APIRouter(tags=["follow-ups"])
#: Shape only: the profile owns the id format; an unknown id is a 404 from the store.
CustomerId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
FollowUpId = Annotated[str, Path(pattern=r"^fup_[0-9a-f]{32}$")]
StaffId = Annotated[str, StringConstraints(pattern=ACTOR_ID_PATTERN.pattern)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NOTE_MAX)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=NOTES_MAX)]
Outcome = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


async def _service(runtime: RuntimeDep) -> FollowUpService:
    return FollowUpService(runtime.uow, FollowUpStore(runtime.db), CustomerStore(runtime.db))


FollowUpsDep = Annotated[FollowUpService, Depends(_service)]


class SetReminder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: In the future, at most a year ahead; with its time zone.
    remind_at: AwareDatetime
    #: Whom to remind; by default the customer's owner, else the advisor recording.
    owner_id: StaffId | None = None
    #: Sent with the reminder; the follow-up's notes are not.
    note: Note | None = None


class RecordFollowUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FollowUpKind
    notes: Notes = ""
    #: When the contact took place, with its time zone; by default now.
    occurred_at: AwareDatetime | None = None
    #: What came of it, in a few words.
    outcome: Outcome | None = None
    reminder: SetReminder | None = None

    def draft(self) -> FollowUpDraft:
        reminder = None
        if self.reminder is not None:
            reminder = ReminderDraft(**self.reminder.model_dump())
        return FollowUpDraft(
            kind=self.kind,
            notes=self.notes,
            outcome=self.outcome,
            occurred_at=self.occurred_at,
            reminder=reminder,
        )


@router.post("/customers/{customer_id}/follow-ups", status_code=status.HTTP_201_CREATED)
async def record_follow_up(
    customer_id: CustomerId,
    body: RecordFollowUp,
    tenant: TenantDep,
    actor: ActorDep,
    follow_ups: FollowUpsDep,
) -> FollowUp:
    """Record a contact with the customer, by the calling advisor, optionally with a
    reminder. When it falls due, `FollowUpReminderDue` is published once."""
    return await follow_ups.record(tenant, customer_id, body.draft(), recorded_by=actor.id)


@router.get("/customers/{customer_id}/follow-ups")
async def list_follow_ups(
    customer_id: CustomerId, tenant: TenantDep, follow_ups: FollowUpsDep, page: PageRequestDep
) -> Page[FollowUp]:
    """The customer's follow-ups, the most recent contact first."""
    items, cursor = await follow_ups.page(tenant, customer_id, page)
    return Page(items=items, next_cursor=cursor)


@router.get("/follow-ups/reminders")
async def list_open_reminders(
    tenant: TenantDep,
    actor: ActorDep,
    follow_ups: FollowUpsDep,
    page: PageRequestDep,
    owner_id: Annotated[StaffId | None, Query(description="by default the caller")] = None,
    due_before: Annotated[AwareDatetime | None, Query()] = None,
) -> Page[FollowUp]:
    """An advisor's reminders still to act on (pending, or sent and not yet done), the
    soonest first; `due_before` keeps those due by then."""
    owner = owner_id or actor.id
    items, cursor = await follow_ups.open_reminders(tenant, owner, due_before, page)
    return Page(items=items, next_cursor=cursor)


@router.post("/follow-ups/{follow_up_id}/reminder/done")
async def complete_reminder(
    follow_up_id: FollowUpId, tenant: TenantDep, actor: ActorDep, follow_ups: FollowUpsDep
) -> FollowUp:
    """Mark the reminder done (before or after it fell due); done again changes nothing."""
    return await follow_ups.complete_reminder(tenant, follow_up_id, by=actor.id)


@router.delete("/follow-ups/{follow_up_id}/reminder")
async def cancel_reminder(
    follow_up_id: FollowUpId, tenant: TenantDep, actor: ActorDep, follow_ups: FollowUpsDep
) -> FollowUp:
    """Cancel the reminder: a pending one is then never published; cancelling again
    changes nothing, and a done reminder cannot be cancelled (409)."""
    return await follow_ups.cancel_reminder(tenant, follow_up_id, by=actor.id)

"""Follow-ups (跟进记录) and their reminders (跟进提醒).

Pure: no I/O. An advisor records a contact with a customer and may set one reminder on it.
A reminder is `pending` until it falls due, `sent` once its event is published (exactly
once), and ends `done` or `cancelled` by the advisor; `failed` parks one that could not be
published at all, so it neither blocks the others nor is retried forever.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from servicekit.errors import Conflict, InvalidInput

NOTES_MAX = 2000
NOTE_MAX = 200
#: How far ahead a reminder may be set.
REMINDER_HORIZON = timedelta(days=365)
#: How far in the future a contact may be dated: the caller's clock may run a little ahead.
CLOCK_SKEW = timedelta(minutes=5)


class FollowUpKind(StrEnum):
    CALL = "call"
    VISIT = "visit"
    MESSAGE = "message"
    WECHAT = "wechat"
    OTHER = "other"


class ReminderState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


#: States in which a reminder still asks something of its owner.
OPEN_STATES = (ReminderState.PENDING, ReminderState.SENT)


class Reminder(BaseModel):
    remind_at: datetime
    #: The advisor to remind.
    owner_id: str
    #: Travels in the `FollowUpReminderDue` event; the follow-up's notes never do.
    note: str = Field(max_length=NOTE_MAX)
    state: ReminderState = ReminderState.PENDING
    sent_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    #: Why a `failed` reminder could not be published.
    failure: str | None = None


class FollowUp(BaseModel):
    id: str
    tenant: str
    customer_id: str
    kind: FollowUpKind
    notes: str = Field(default="", max_length=NOTES_MAX)
    outcome: str | None = None
    occurred_at: datetime
    recorded_by: str
    recorded_at: datetime
    reminder: Reminder | None = None


@dataclass(frozen=True, kw_only=True)
class ReminderDraft:
    remind_at: datetime
    owner_id: str | None = None
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class FollowUpDraft:
    """What the advisor submits; `occurred_at` defaults to now."""

    kind: FollowUpKind
    notes: str = ""
    outcome: str | None = None
    occurred_at: datetime | None = None
    reminder: ReminderDraft | None = None


def new_follow_up_id() -> str:
    return f"fup_{uuid.uuid4().hex}"


def to_store_precision(at: datetime) -> datetime:
    """UTC at millisecond precision, so the value read back from the store is the same."""
    at = at.astimezone(UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def record(
    draft: FollowUpDraft,
    *,
    tenant: str,
    customer_id: str,
    customer_owner: str | None,
    recorded_by: str,
    at: datetime,
) -> FollowUp:
    """A follow-up as recorded now; its reminder goes to the named owner, else the
    customer's owner, else the advisor who records it."""
    occurred_at = check_occurred_at(draft.occurred_at or at, now=at)
    reminder = None
    if draft.reminder is not None:
        reminder = plan_reminder(
            draft.reminder,
            owner=draft.reminder.owner_id or customer_owner or recorded_by,
            default_note=f"Follow up on the {draft.kind} of {occurred_at:%Y-%m-%d}",
            now=at,
        )
    return FollowUp(
        id=new_follow_up_id(),
        tenant=tenant,
        customer_id=customer_id,
        kind=draft.kind,
        notes=draft.notes,
        outcome=draft.outcome,
        occurred_at=occurred_at,
        recorded_by=recorded_by,
        recorded_at=to_store_precision(at),
        reminder=reminder,
    )


def check_occurred_at(occurred_at: datetime, *, now: datetime) -> datetime:
    if occurred_at > now + CLOCK_SKEW:
        raise InvalidInput("a contact cannot be dated in the future", field="occurred_at")
    return to_store_precision(occurred_at)


def plan_reminder(
    draft: ReminderDraft, *, owner: str, default_note: str, now: datetime
) -> Reminder:
    remind_at = check_reminder_window(draft.remind_at, now=now)
    return Reminder(remind_at=remind_at, owner_id=owner, note=draft.note or default_note)


def check_reminder_window(remind_at: datetime, *, now: datetime) -> datetime:
    """A reminder is set in the future, at most a year ahead."""
    field = "reminder.remind_at"
    if remind_at <= now:
        raise InvalidInput("a reminder must be set in the future", field=field)
    if remind_at > now + REMINDER_HORIZON:
        raise InvalidInput("a reminder can be set at most a year ahead", field=field)
    return to_store_precision(remind_at)


def complete(reminder: Reminder, *, by: str, at: datetime) -> Reminder | None:
    """The advisor did what the reminder asked; None when it is already done."""
    if reminder.state is ReminderState.DONE:
        return None
    if reminder.state is ReminderState.CANCELLED:
        raise Conflict("the reminder was cancelled", code="reminder_cancelled")
    return _closed(reminder, ReminderState.DONE, by=by, at=at)


def cancel(reminder: Reminder, *, by: str, at: datetime) -> Reminder | None:
    """The reminder is no longer wanted; None when it is already cancelled."""
    if reminder.state is ReminderState.CANCELLED:
        return None
    if reminder.state is ReminderState.DONE:
        raise Conflict("the reminder is already done", code="reminder_done")
    return _closed(reminder, ReminderState.CANCELLED, by=by, at=at)


def _closed(reminder: Reminder, state: ReminderState, *, by: str, at: datetime) -> Reminder:
    return reminder.model_copy(
        update={"state": state, "closed_at": to_store_precision(at), "closed_by": by}
    )

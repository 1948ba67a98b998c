"""The follow-up rules, without I/O: contacts are not dated in the future, a reminder is set
in the future and at most a year ahead for the right owner, and closing it follows its
state machine (done and cancel are idempotent, and exclude each other)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from servicekit.errors import Conflict, InvalidInput
from services.customer.domain import follow_ups as rules
from services.customer.domain.follow_ups import (
    FollowUp,
    FollowUpDraft,
    FollowUpKind,
    Reminder,
    ReminderDraft,
    ReminderState,
)

NOW = datetime(2025, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)


def draft(**overrides: Any) -> FollowUpDraft:
    return FollowUpDraft(**{"kind": FollowUpKind.CALL, "notes": "Asked about sizes", **overrides})


def record(
    follow_up_draft: FollowUpDraft | None = None,
    *,
    customer_owner: str | None = None,
    recorded_by: str = "advisor-7",
) -> FollowUp:
    return rules.record(
        follow_up_draft or draft(),
        tenant="acme",
        customer_id="cus_1",
        customer_owner=customer_owner,
        recorded_by=recorded_by,
        at=NOW,
    )


def reminder(state: ReminderState = ReminderState.PENDING) -> Reminder:
    return Reminder(
        remind_at=NOW + timedelta(days=1), owner_id="advisor-7", note="Call back", state=state
    )


# --------------------------------------------------------------------------- recording


def test_a_contact_without_a_time_happened_now_at_store_precision() -> None:
    follow_up = record()
    assert follow_up.occurred_at == follow_up.recorded_at == NOW.replace(microsecond=123000)
    assert follow_up.id.startswith("fup_") and len(follow_up.id) == 36
    assert follow_up.recorded_by == "advisor-7"
    assert follow_up.reminder is None


def test_a_contact_in_another_zone_is_kept_in_utc() -> None:
    shanghai = datetime(2025, 3, 1, 16, 0, tzinfo=timezone(timedelta(hours=8)))
    follow_up = record(draft(occurred_at=shanghai))
    assert follow_up.occurred_at.tzinfo is UTC
    assert follow_up.occurred_at == shanghai


def test_a_contact_a_little_ahead_is_clock_skew_and_accepted() -> None:
    ahead = NOW + rules.CLOCK_SKEW - timedelta(seconds=1)
    assert record(draft(occurred_at=ahead)).occurred_at <= ahead


def test_a_contact_in_the_future_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        record(draft(occurred_at=NOW + timedelta(hours=1)))
    assert refused.value.extra["errors"][0]["field"] == "occurred_at"


# --------------------------------------------------------------------------- reminder window


@pytest.mark.parametrize(
    "ahead",
    [timedelta(seconds=1), timedelta(hours=3), rules.REMINDER_HORIZON],
    ids=["a-second", "hours", "a-year"],
)
def test_a_reminder_in_the_window_is_accepted(ahead: timedelta) -> None:
    remind_at = rules.check_reminder_window(NOW + ahead, now=NOW)
    assert NOW < remind_at <= NOW + ahead


@pytest.mark.parametrize(
    ("ahead", "reason"),
    [
        (timedelta(0), "future"),
        (-timedelta(minutes=1), "future"),
        (rules.REMINDER_HORIZON + timedelta(seconds=1), "a year"),
    ],
    ids=["now", "past", "beyond-a-year"],
)
def test_a_reminder_outside_the_window_is_refused(ahead: timedelta, reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.check_reminder_window(NOW + ahead, now=NOW)
    [error] = refused.value.extra["errors"]
    assert error["field"] == "reminder.remind_at"
    assert reason in error["reason"]


def test_a_reminder_goes_to_the_named_owner_first() -> None:
    wanted = draft(reminder=ReminderDraft(remind_at=NOW + timedelta(days=1), owner_id="colleague"))
    follow_up = record(wanted, customer_owner="owner-1")
    assert follow_up.reminder is not None and follow_up.reminder.owner_id == "colleague"


def test_a_reminder_goes_to_the_customers_owner_by_default() -> None:
    wanted = draft(reminder=ReminderDraft(remind_at=NOW + timedelta(days=1)))
    follow_up = record(wanted, customer_owner="owner-1")
    assert follow_up.reminder is not None and follow_up.reminder.owner_id == "owner-1"


def test_a_reminder_for_a_customer_without_owner_goes_to_the_recorder() -> None:
    wanted = draft(reminder=ReminderDraft(remind_at=NOW + timedelta(days=1)))
    follow_up = record(wanted, recorded_by="advisor-9")
    assert follow_up.reminder is not None and follow_up.reminder.owner_id == "advisor-9"


def test_a_new_reminder_is_pending_with_a_note_that_is_not_the_notes() -> None:
    wanted = draft(
        notes="Her mobile is 13800000000", reminder=ReminderDraft(remind_at=NOW + timedelta(days=2))
    )
    planned = record(wanted).reminder
    assert planned is not None
    assert planned.state is ReminderState.PENDING
    assert "13800000000" not in planned.note and "call" in planned.note
    assert planned.remind_at == (NOW + timedelta(days=2)).replace(microsecond=123000)


def test_a_given_note_is_kept() -> None:
    wanted = draft(reminder=ReminderDraft(remind_at=NOW + timedelta(days=2), note="Bring samples"))
    planned = record(wanted).reminder
    assert planned is not None and planned.note == "Bring samples"


# --------------------------------------------------------------------------- closing


@pytest.mark.parametrize("state", [ReminderState.PENDING, ReminderState.SENT, ReminderState.FAILED])
def test_an_open_reminder_can_be_done(state: ReminderState) -> None:
    done = rules.complete(reminder(state), by="advisor-7", at=NOW)
    assert done is not None and done.state is ReminderState.DONE
    assert (done.closed_by, done.closed_at) == ("advisor-7", NOW.replace(microsecond=123000))


@pytest.mark.parametrize("state", [ReminderState.PENDING, ReminderState.SENT, ReminderState.FAILED])
def test_an_open_reminder_can_be_cancelled(state: ReminderState) -> None:
    cancelled = rules.cancel(reminder(state), by="advisor-7", at=NOW)
    assert cancelled is not None and cancelled.state is ReminderState.CANCELLED


def test_done_again_changes_nothing() -> None:
    assert rules.complete(reminder(ReminderState.DONE), by="advisor-7", at=NOW) is None


def test_cancelled_again_changes_nothing() -> None:
    assert rules.cancel(reminder(ReminderState.CANCELLED), by="advisor-7", at=NOW) is None


def test_a_cancelled_reminder_cannot_be_done() -> None:
    with pytest.raises(Conflict) as refused:
        rules.complete(reminder(ReminderState.CANCELLED), by="advisor-7", at=NOW)
    assert refused.value.code == "reminder_cancelled"


def test_a_done_reminder_cannot_be_cancelled() -> None:
    with pytest.raises(Conflict) as refused:
        rules.cancel(reminder(ReminderState.DONE), by="advisor-7", at=NOW)
    assert refused.value.code == "reminder_done"


def test_closing_keeps_what_the_reminder_was() -> None:
    sent = reminder(ReminderState.SENT).model_copy(update={"sent_at": NOW})
    done = rules.complete(sent, by="advisor-7", at=NOW + timedelta(minutes=5))
    assert done is not None
    assert (done.sent_at, done.remind_at, done.note) == (sent.sent_at, sent.remind_at, sent.note)

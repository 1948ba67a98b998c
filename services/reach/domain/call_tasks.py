"""Call-centre tasks (外呼任务): an outbound-call message becomes a task an agent claims,
calls and closes with an outcome; the outcome is the message's receipt.

    open --claim--> claimed --answered/no_answer/refused--> done
                           --callback(at)--> open again, due at the callback time

Pure: no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

#: The furthest ahead a callback may be booked.
LONGEST_CALLBACK = timedelta(days=30)


class TaskState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    #: The customer asked not to be called: consent for marketing calls is withdrawn.
    REFUSED = "refused"
    #: Call again at `callback_at` (the customer asked, or the line was busy).
    CALLBACK = "callback"


class OutcomeReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: CallOutcome
    note: str | None = Field(None, max_length=500)
    callback_at: datetime | None = None


class Receipt(BaseModel):
    delivered: bool
    reason: str | None = None


def problem(report: OutcomeReport, now: datetime) -> str | None:
    """Why the report cannot be recorded, or None."""
    if report.outcome is not CallOutcome.CALLBACK:
        return "callback_at is for callbacks only" if report.callback_at else None
    at = report.callback_at
    if at is None or at.tzinfo is None:
        return "a callback needs callback_at with a time zone offset"
    if not now < at <= now + LONGEST_CALLBACK:
        return f"callback_at must be in the future and within {LONGEST_CALLBACK.days} days"
    return None


def receipt(outcome: CallOutcome) -> Receipt | None:
    """The message's receipt for a final outcome (a callback is not final: none)."""
    if outcome is CallOutcome.ANSWERED:
        return Receipt(delivered=True)
    if outcome is CallOutcome.CALLBACK:
        return None
    return Receipt(delivered=False, reason=f"call_{outcome}")

"""Consent (客户授权): may the brand reach a customer on a channel for a purpose.

Pure: no I/O. One record per (tenant, customer, channel, purpose) holds the current state;
every change is also a history entry and exactly one event, so the history, the record and
the published events always tell the same story.

Opt-in: a channel and purpose for which nothing was ever recorded is *not* allowed. An
explicit refusal (a withdrawal with no grant before it) is recorded like any change, so a
customer who declined is told apart from one who was never asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class Channel(StrEnum):
    SMS = "sms"
    CALL = "call"
    WECHAT = "wechat"
    EMAIL = "email"
    PUSH = "push"
    SUBSCRIPTION_MESSAGE = "subscription_message"


class Purpose(StrEnum):
    MARKETING = "marketing"
    SERVICE = "service"
    DATA_PROCESSING = "data_processing"


class ConsentState(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


#: Where a consent was given or withdrawn (mini_program_popup, store_form, import, api,
#: sms_reply...): a lowercase slug rather than a closed list, as brands add their own forms.
SOURCE_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


class ConsentChange(BaseModel):
    """One entry of a consent's history, append-only. `version` numbers them from 1."""

    version: int = Field(ge=1)
    state: ConsentState
    source: str
    recorded_by: str
    changed_at: datetime


class Consent(BaseModel):
    """The current state of one channel and purpose for one customer."""

    tenant: str
    customer_id: str
    channel: Channel
    purpose: Purpose
    state: ConsentState
    source: str
    recorded_by: str
    changed_at: datetime
    #: The version of the last change; the store writes only over the version it read.
    version: int = Field(ge=1)

    @property
    def allowed(self) -> bool:
        return self.state is ConsentState.GRANTED

    def last_change(self) -> ConsentChange:
        return ConsentChange(
            version=self.version,
            state=self.state,
            source=self.source,
            recorded_by=self.recorded_by,
            changed_at=self.changed_at,
        )


@dataclass(frozen=True, kw_only=True)
class ConsentRequest:
    """What the caller asks: grant or withdraw, from where, by whom, when."""

    tenant: str
    customer_id: str
    channel: Channel
    purpose: Purpose
    granted: bool
    source: str
    recorded_by: str
    at: datetime


def record(current: Consent | None, request: ConsentRequest) -> Consent | None:
    """The consent after `request`, or None when it changes nothing (granting a granted
    consent, withdrawing a withdrawn one): a repeat is answered, not recorded again."""
    state = ConsentState.GRANTED if request.granted else ConsentState.WITHDRAWN
    if current is not None and current.state is state:
        return None
    return Consent(
        tenant=request.tenant,
        customer_id=request.customer_id,
        channel=request.channel,
        purpose=request.purpose,
        state=state,
        source=request.source,
        recorded_by=request.recorded_by,
        changed_at=_not_before(request.at, current),
        version=current.version + 1 if current else 1,
    )


def _not_before(at: datetime, current: Consent | None) -> datetime:
    # Replicas' clocks differ a little; history times must still never run backwards.
    return max(at, current.changed_at) if current else at


def is_allowed(current: Consent | None) -> bool:
    """May the channel be used for the purpose now? Only after a grant (opt-in)."""
    return current is not None and current.allowed


def every_pair() -> list[tuple[Channel, Purpose]]:
    """Every channel and purpose, in a stable order, for the full consent picture."""
    return [(channel, purpose) for channel in Channel for purpose in Purpose]

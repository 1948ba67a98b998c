"""Staff notices: ops alerts (预警) told to the team that owns what they are about, through
the team's contacts (email, mobile, a webhook such as a WeCom group robot). A notice is a
service message to staff: no consent, caps or quiet hours, but once per alert and contact.
Pure: no I/O."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.reach.domain.messages import message_id

#: Who is told when an alert names no owning team, or a team with no contacts.
FALLBACK_TEAM = "ops"
TEMPLATE_ID = "ops_alert"
ADDRESS = {
    "email": re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,}$"),
    "mobile": re.compile(r"^\+?[0-9]{6,20}$"),
    "webhook": re.compile(r"^https?://[^\s]{1,490}$"),
}


class ContactKind(StrEnum):
    EMAIL = "email"
    MOBILE = "mobile"
    WEBHOOK = "webhook"


#: The channel each kind of contact is sent on (its provider is the tenant's or the
#: deployment's for that channel; a webhook contact is its own endpoint).
CHANNEL = {ContactKind.EMAIL: "email", ContactKind.MOBILE: "sms", ContactKind.WEBHOOK: "webhook"}


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ContactKind
    address: str = Field(max_length=500)
    name: str | None = Field(None, max_length=60)

    @model_validator(mode="after")
    def _address_fits_kind(self) -> Contact:
        if not ADDRESS[self.kind].fullmatch(self.address):
            raise ValueError(f"{self.address!r} is not a valid {self.kind} address")
        return self


class Team(BaseModel):
    tenant: str
    team: str
    contacts: list[Contact] = Field(min_length=1, max_length=20)
    updated_by: str
    updated_at: datetime


class Alert(BaseModel):
    """What a notice says of an alert (the coupon service's `coupon.alert_raised.v1`)."""

    alert_id: str
    kind: str
    severity: str
    title: str
    detail: str
    subject_kind: str
    subject_id: str
    owner: str | None = None
    measures: dict[str, float] = Field(default_factory=dict)


def notice_id(tenant: str, alert_id: str, contact: Contact) -> str:
    """One message per alert and contact, however often the alert is announced."""
    return message_id(tenant, f"alert:{alert_id}:{contact.kind}:{contact.address}")


def content(alert: Alert) -> dict[str, Any]:
    """The notice's words: a subject line and a short body (an SMS fits 2 segments)."""
    measures = ", ".join(f"{k}={v:g}" for k, v in sorted(alert.measures.items()))
    body = f"[{alert.severity}] {alert.title}: {alert.detail}"
    if measures:
        body += f" ({measures})"
    return {"subject": f"[预警/{alert.severity}] {alert.title}"[:200], "body": body[:500]}

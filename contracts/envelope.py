"""The CloudEvents-shaped envelope every event travels in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SPEC_VERSION = "1.0"


def new_event_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """CloudEvents 1.0 attributes plus `tenant` and W3C trace context.

    `data` stays a plain mapping here: the typed event is resolved from `type` by
    `contracts.events.event_class`, after upcasting old versions.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: str = SPEC_VERSION
    id: str = Field(default_factory=new_event_id, min_length=1, max_length=64)
    type: str = Field(pattern=r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+\.v[0-9]+$")
    source: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=1, max_length=200)
    time: datetime = Field(default_factory=utcnow)
    tenant: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    traceparent: str | None = None
    tracestate: str | None = None
    datacontenttype: str = "application/json"
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)

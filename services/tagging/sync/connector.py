"""What a third-party platform connector offers the tag sync (标签同步)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

from pydantic import BaseModel

from services.tagging.domain.tags import Tag


class TagChange(BaseModel):
    """One tag put on or taken off one customer, waiting to reach the platform."""

    change_id: str
    tenant: str
    customer_id: str
    tag_id: str
    action: Literal["mark", "unmark"]
    queued_at: datetime
    attempts: int = 0


class SyncStatus(StrEnum):
    SYNCED = "synced"
    #: The platform knows no contact for the customer: nothing to do until one is linked.
    NOT_LINKED = "not_linked"
    #: A transient fault (busy, network): tried again later with backoff.
    RETRY = "retry"
    #: The platform refused it for good (a 4xx-like errcode): recorded, not retried.
    FAILED = "failed"


class ChangeOutcome(BaseModel):
    change_id: str
    status: SyncStatus
    errcode: int | None = None
    errmsg: str | None = None


class SyncResult(BaseModel):
    outcomes: list[ChangeOutcome]


class Connector(Protocol):
    name: str

    async def ensure_tags(self, tenant: str, tags: list[Tag]) -> None:
        """Make sure the platform knows these tags (created once, remembered)."""

    async def push(self, tenant: str, changes: list[TagChange]) -> SyncResult:
        """Apply the changes; one outcome per change, never raising for one change's fault."""

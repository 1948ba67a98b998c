"""What a job is: its states, its record, its limits."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, Field

from servicekit.mongo import Document, Index

JOBS = "jobs"


ATTACHMENTS = "job_attachments"
#: Errors kept per job: enough to fix a file, small enough for one document.
MAX_ERRORS = 100
#: Progress is written after this many items or this many seconds, whichever comes first.
FLUSH_ITEMS = 200
FLUSH_SECONDS = 1.0
#: A runner looks for queued jobs this often when nothing wakes it (a job submitted by
#: another replica). `Runtime.state[POLL_OVERRIDE]` changes it while running (tests).
POLL_SECONDS = 2.0
POLL_OVERRIDE = "jobs.poll_seconds"
#: How long a claim lasts without renewal; the runner renews it every third of that.
LEASE_SECONDS = 30.0
#: Where a running `JobRunner` leaves the event that wakes it, for `submit` to set.
WAKEUP = "jobs.wakeup"
#: Attachments outlive any sane job; the handler deletes its own when it finishes.
ATTACHMENT_RETENTION = timedelta(days=7)

JOB_INDEXES = [
    Index(JOBS, [("state", 1), ("kind", 1), ("lease_until", 1)], name="claimable"),
    Index(JOBS, [("tenant", 1), ("_id", -1)], name="by_tenant"),
    Index(
        ATTACHMENTS,
        [("created_at", 1)],
        expire_after_seconds=int(ATTACHMENT_RETENTION.total_seconds()),
        name="attachment_ttl",
    ),
]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class ItemError(BaseModel):
    item: str
    reason: str


class Job(BaseModel):
    """A job as its caller sees it; `checkpoint` is where a resumed run starts again."""

    id: str
    tenant: str
    kind: str
    state: JobState
    params: dict[str, Any] = Field(default_factory=dict)
    total: int | None = None
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    errors: list[ItemError] = Field(default_factory=list)
    result: dict[str, Any] | None = None
    failure: str | None = None
    cancel_requested: bool = False
    attempts: int = 0
    created_by: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_until: datetime | None = None
    checkpoint: Any = None

    @classmethod
    def from_doc(cls, doc: Document) -> Job:
        return cls.model_validate({**doc, "id": doc["_id"]})


class JobFailed(Exception):
    """Raised by a handler to fail its job with a reason meant for the caller."""


def new_job_id() -> str:
    # An ObjectId's hex sorts by creation time, so listings page newest first by `_id`.
    return f"job_{ObjectId()}"


# --------------------------------------------------------------------------- the store

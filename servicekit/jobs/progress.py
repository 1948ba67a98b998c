"""Progress counted in memory and written in batches."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from servicekit.jobs.model import FLUSH_ITEMS, FLUSH_SECONDS, MAX_ERRORS, ItemError

JOBS = "jobs"


class ProgressFlush(BaseModel):
    """Progress gathered since the last write."""

    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    errors: list[ItemError] = Field(default_factory=list)
    total: int | None = None
    checkpoint: Any = None
    has_checkpoint: bool = False

    @property
    def empty(self) -> bool:
        return not (self.processed or self.errors or self.has_checkpoint or self.total is not None)


class ProgressBuffer:
    """Pure: gathers progress, keeps the error list within `MAX_ERRORS` across runs, and
    says when a write is due (every `FLUSH_ITEMS` items or `FLUSH_SECONDS`)."""

    def __init__(self, *, errors_kept: int, now: float) -> None:
        self.errors_kept = errors_kept
        self.pending = ProgressFlush()
        self.last_flush = now

    def add(
        self,
        *,
        processed: int,
        succeeded: int,
        failed: int,
        errors: list[ItemError],
        checkpoint: Any,
        has_checkpoint: bool,
    ) -> None:
        p = self.pending
        p.processed += processed
        p.succeeded += succeeded
        p.failed += failed
        room = MAX_ERRORS - self.errors_kept - len(p.errors)
        p.errors.extend(errors[: max(room, 0)])
        if has_checkpoint:
            p.checkpoint, p.has_checkpoint = checkpoint, True

    def due(self, now: float) -> bool:
        return self.pending.processed >= FLUSH_ITEMS or now - self.last_flush >= FLUSH_SECONDS

    def take(self, now: float) -> ProgressFlush:
        taken, self.pending = self.pending, ProgressFlush()
        self.errors_kept += len(taken.errors)
        self.last_flush = now
        return taken

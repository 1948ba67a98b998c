"""Outbound calls (外呼任务): this provider calls no one. It puts a task on the call
centre's list, with the script the template rendered; an agent claims it, calls, and
records the outcome, which comes back as the message's delivery receipt (see
service/call_tasks.py). Idempotent by message id, so a message re-sent after a crash makes
one task. The customer's number is not copied here: the agent is shown it on claiming."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from servicekit.clock import utcnow
from servicekit.mongo import Document, Index
from services.reach.domain.call_tasks import TaskState
from services.reach.providers.base import Accepted, Outbound, Outcome, Provider

CALL_TASKS = "call_tasks"
INDEXES = [
    Index(CALL_TASKS, [("tenant", 1), ("state", 1), ("due_at", 1), ("_id", 1)], name="by_state"),
    Index(CALL_TASKS, [("tenant", 1), ("agent", 1), ("due_at", 1), ("_id", 1)], name="by_agent"),
]
DUPLICATE_KEY = 11000


class CallTaskProvider(Provider):
    name = "call_task"

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._tasks = db[CALL_TASKS]

    async def send(self, message: Outbound) -> Accepted:
        return (await self.send_many([message]))[0]  # type: ignore[return-value]

    async def send_many(self, messages: list[Outbound]) -> list[Outcome]:
        now = utcnow()
        docs = [_task(m, now) for m in messages]
        try:
            await self._tasks.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(e["code"] != DUPLICATE_KEY for e in exc.details["writeErrors"]):
                raise
        # Accepted, not delivered: the call's outcome is the receipt.
        return [Accepted(provider_ref=m.message_id) for m in messages]


def _task(message: Outbound, now: object) -> Document:
    return {
        "_id": message.message_id,
        "tenant": message.tenant,
        "customer_id": message.customer_id,
        "campaign_id": message.campaign_id,
        "title": message.content.title,
        "script": message.content.body or "",
        "state": str(TaskState.OPEN),
        "due_at": now,
        "agent": None,
        "created_at": now,
        "attempts": [],
    }

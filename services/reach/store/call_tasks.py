"""The call centre's task list (written by the call_task provider): pages by state or
agent in due order, claims that only one agent can win (one conditional update), and
outcomes only the claiming agent can record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, update_and_read
from services.reach.domain.call_tasks import TaskState
from services.reach.providers.call_task import CALL_TASKS


class CallTaskStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._tasks = db[CALL_TASKS]

    async def page(
        self,
        tenant: str,
        *,
        state: TaskState | None,
        agent: str | None,
        due_before: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Document]:
        """Up to `limit + 1` tasks in due order (then id), after the cursor's position."""
        query: dict[str, Any] = {"tenant": tenant}
        if state is not None:
            query["state"] = str(state)
        if agent is not None:
            query["agent"] = agent
        if due_before is not None:
            query["due_at"] = {"$lte": due_before}
        if after is not None:
            due, task_id = after
            query["$or"] = [{"due_at": {"$gt": due}}, {"due_at": due, "_id": {"$gt": task_id}}]
        cursor = self._tasks.find(query).sort([("due_at", 1), ("_id", 1)]).limit(limit + 1)
        return await cursor.to_list()

    async def get(self, tenant: str, task_id: str) -> Document | None:
        return await self._tasks.find_one({"_id": task_id, "tenant": tenant})

    async def claim(self, tenant: str, task_id: str, agent: str, now: datetime) -> Document | None:
        """Give an open, due task to `agent`; None when another agent holds it (or it is
        done, or not due)."""
        return await update_and_read(
            self._tasks,
            {
                "_id": task_id,
                "tenant": tenant,
                "state": str(TaskState.OPEN),
                "due_at": {"$lte": now},
            },
            {"$set": {"state": str(TaskState.CLAIMED), "agent": agent, "claimed_at": now}},
        )

    async def close(
        self,
        tenant: str,
        task_id: str,
        agent: str,
        changes: Document,
        attempt: Document,
        session: AsyncClientSession,
    ) -> Document | None:
        """Record an attempt on a task `agent` holds; None when they do not hold it."""
        return await update_and_read(
            self._tasks,
            {"_id": task_id, "tenant": tenant, "state": str(TaskState.CLAIMED), "agent": agent},
            {"$set": changes, "$push": {"attempts": attempt}},
            session=session,
        )

    async def release(self, tenant: str, task_id: str, agent: str) -> Document | None:
        """Give a claimed task back to the list (the agent cannot call now)."""
        return await update_and_read(
            self._tasks,
            {"_id": task_id, "tenant": tenant, "state": str(TaskState.CLAIMED), "agent": agent},
            {"$set": {"state": str(TaskState.OPEN), "agent": None, "claimed_at": None}},
        )

"""The call centre's task list (外呼任务): outbound-call messages become tasks; agents page
through them, claim one (exactly one agent wins a task), call, and record the outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from servicekit.clock import utcnow
from servicekit.context import ActorDep, TenantDep
from servicekit.errors import InvalidInput
from servicekit.mongo import Document
from servicekit.pagination import Page, PageRequestDep, page_of
from services.reach.api.deps import MessageId, ReachDep
from services.reach.domain.call_tasks import OutcomeReport, TaskState
from services.reach.service import call_tasks
from services.reach.store.call_tasks import CallTaskStore

router = APIRouter(tags=["call tasks"])
Agent = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:@-]{1,128}$")]


class CallTaskView(BaseModel):
    task_id: str
    customer_id: str
    campaign_id: str | None = None
    title: str | None = None
    #: What the agent says: the template's script, filled in.
    script: str
    state: TaskState
    due_at: datetime
    agent: str | None = None
    claimed_at: datetime | None = None
    outcome: str | None = None
    attempts: list[dict[str, Any]] = []

    @classmethod
    def of(cls, doc: Document) -> CallTaskView:
        fields = {k: v for k, v in doc.items() if k in cls.model_fields}
        return cls(task_id=doc["_id"], **fields)


@router.get("/call-tasks")
async def list_call_tasks(
    tenant: TenantDep,
    reach: ReachDep,
    page: PageRequestDep,
    state: TaskState | None = None,
    agent: Agent = None,
    due: Annotated[bool, Query(description="only tasks due now")] = False,
) -> Page[CallTaskView]:
    """Tasks in due order, by state and/or agent, a cursor page at a time."""
    after = None
    if page.after is not None:
        try:
            after = (
                datetime.fromisoformat(page.after_value("due_at")),
                str(page.after_value("id")),
            )
        except ValueError:
            raise InvalidInput("the cursor is not one this API returned", field="cursor") from None
    docs = await CallTaskStore(reach.dispatcher.uow.db).page(
        tenant,
        state=state,
        agent=agent,
        due_before=utcnow() if due else None,
        after=after,
        limit=page.limit,
    )
    views = [CallTaskView.of(d) for d in docs]
    return page_of(views, page.limit, lambda t: {"due_at": t.due_at.isoformat(), "id": t.task_id})


@router.post("/call-tasks/{task_id}/claim")
async def claim_call_task(
    task_id: MessageId, tenant: TenantDep, actor: ActorDep, reach: ReachDep
) -> CallTaskView:
    """The calling agent takes the task (409 `call_task_taken` when another was first)."""
    return CallTaskView.of(await call_tasks.claim(reach, tenant, task_id, actor.id))


@router.post("/call-tasks/{task_id}/release")
async def release_call_task(
    task_id: MessageId, tenant: TenantDep, actor: ActorDep, reach: ReachDep
) -> CallTaskView:
    """The holding agent gives the task back to the list (409 when they do not hold it)."""
    return CallTaskView.of(await call_tasks.release(reach, tenant, task_id, actor.id))


@router.get("/call-tasks/{task_id}/number")
async def number_to_call(
    task_id: MessageId, tenant: TenantDep, actor: ActorDep, reach: ReachDep
) -> dict[str, str]:
    """The customer's mobile, shown only to the agent holding the task (reach keeps no
    copy: it is asked of the customer service)."""
    return {"mobile": await call_tasks.number_to_call(reach, tenant, task_id, actor.id)}


@router.post("/call-tasks/{task_id}/outcome")
async def record_call_outcome(
    task_id: MessageId, body: OutcomeReport, tenant: TenantDep, actor: ActorDep, reach: ReachDep
) -> CallTaskView:
    """How the call went: `answered` (the message is delivered), `no_answer` or `refused`
    (failed; a refusal withdraws consent for marketing calls), or `callback` at
    `callback_at` (the task is open again, due then)."""
    return CallTaskView.of(await call_tasks.record(reach, tenant, task_id, actor.id, body))

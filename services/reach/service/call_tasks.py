"""Call-centre use cases: claim a task (and see whom to call), record a call's outcome.
The outcome is the message's receipt (answered: delivered; no answer or refused: failed
with the reason), recorded in the task's transaction through the same receipts path every
channel uses, so reports, attribution and events treat calls like any message. A refusal
withdraws the customer's consent for marketing calls at once, as an unsubscribe does."""

from __future__ import annotations

from servicekit.clock import utcnow
from servicekit.errors import Conflict, InvalidInput, NotFound
from servicekit.mongo import Document
from servicekit.unit_of_work import Tx
from services.reach.domain import call_tasks as rules
from services.reach.domain.call_tasks import CallOutcome, OutcomeReport, TaskState
from services.reach.domain.channels import Channel
from services.reach.service.receipts import Receipts
from services.reach.service.unsubscribe import withdraw_in
from services.reach.service.wiring import Reach
from services.reach.store.call_tasks import CallTaskStore


async def claim(reach: Reach, tenant: str, task_id: str, agent: str) -> Document:
    """The task, now the agent's."""
    store = CallTaskStore(reach.dispatcher.uow.db)
    task = await store.claim(tenant, task_id, agent, utcnow())
    if task is None:
        await _found(store, tenant, task_id)
        raise Conflict("the task is taken, done, or not due yet", code="call_task_taken")
    return task


async def release(reach: Reach, tenant: str, task_id: str, agent: str) -> Document:
    """The agent gives the task back, for another to claim."""
    store = CallTaskStore(reach.dispatcher.uow.db)
    task = await store.release(tenant, task_id, agent)
    if task is None:
        await _found(store, tenant, task_id)
        raise Conflict("the task is not claimed by you", code="call_task_not_yours")
    return task


async def number_to_call(reach: Reach, tenant: str, task_id: str, agent: str) -> str:
    """The customer's mobile, for the agent holding the task only: asked of the customer
    service when needed rather than copied onto the list."""
    store = CallTaskStore(reach.dispatcher.uow.db)
    task = await store.get(tenant, task_id)
    if task is None:
        raise NotFound(f"no call task {task_id}", code="call_task_not_found")
    if task["state"] != str(TaskState.CLAIMED) or task["agent"] != agent:
        raise Conflict("the task is not claimed by you", code="call_task_not_yours")
    mobile = await reach.contacts.resolve(tenant, task["customer_id"], "mobile")
    if not mobile:
        raise NotFound("the customer service knows no mobile for the customer", code="no_mobile")
    return mobile


async def record(
    reach: Reach, tenant: str, task_id: str, agent: str, report: OutcomeReport
) -> Document:
    now = utcnow()
    problem = rules.problem(report, now)
    if problem:
        raise InvalidInput(problem, field="callback_at")
    store = CallTaskStore(reach.dispatcher.uow.db)
    receipts = Receipts(reach.dispatcher.uow, reach.messages)
    attempt = {"agent": agent, "outcome": str(report.outcome), "note": report.note, "at": now}
    if report.outcome is CallOutcome.CALLBACK:
        changes: Document = {
            "state": str(TaskState.OPEN),
            "agent": None,
            "due_at": report.callback_at,
        }
    else:
        changes = {"state": str(TaskState.DONE), "outcome": str(report.outcome), "done_at": now}

    async def work(tx: Tx) -> Document | None:
        task = await store.close(tenant, task_id, agent, changes, attempt, tx.session)
        if task is None:
            return None
        receipt = rules.receipt(report.outcome)
        if receipt is not None and receipt.delivered:
            await receipts.delivered_in(tx, tenant, task_id, now)
        elif receipt is not None:
            await receipts.failed_in(tx, tenant, task_id, receipt.reason or "call_failed", now)
        if report.outcome is CallOutcome.REFUSED:
            await withdraw_in(
                tx, reach.audience, tenant, task["customer_id"], Channel.CALL, "call_refused"
            )
        return task

    task = await reach.dispatcher.uow.run(work)
    if task is None:
        await _found(store, tenant, task_id)
        raise Conflict("the task is not claimed by you", code="call_task_not_yours")
    return task


async def _found(store: CallTaskStore, tenant: str, task_id: str) -> None:
    if await store.get(tenant, task_id) is None:
        raise NotFound(f"no call task {task_id}", code="call_task_not_found")

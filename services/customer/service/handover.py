"""Handover (离职/在职继承): an advisor's customers reassigned in bulk, as a job.

Each customer moves in a transaction of its own through `CustomerService.reassign`, so the
owner history, change log and `customer.owner_changed.v1` are exactly those of a single
reassignment, and a crash loses at most the customer in flight (the job resumes after the
last one done)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from servicekit.context import Actor
from servicekit.errors import DomainError
from servicekit.jobs import ItemError, JobContext, JobHandler
from servicekit.unit_of_work import Tx
from services.customer.service.profiles import CustomerService
from services.customer.store.custom_fields import CustomFieldStore
from services.customer.store.customers import CustomerStore

HANDOVER = "customer.handover"


class HandoverPlan(BaseModel):
    """The job's params: whose customers go where, and why."""

    from_owner: str
    #: One colleague, or a team served round-robin in customer id order.
    team: list[str] = Field(min_length=1)
    reason: str

    @property
    def change_reason(self) -> str:
        return f"handover:{self.reason}"


class HandoverCheckpoint(BaseModel):
    """The last customer id done, and how many were moved so far: the round-robin turn
    continues where it stopped, so counts per teammate differ by at most one."""

    after: str = ""
    moved: int = 0


def successor(plan: HandoverPlan, moved: int) -> str:
    return plan.team[moved % len(plan.team)]


def service_for(ctx: JobContext) -> CustomerService:
    if ctx.runtime is None:
        raise RuntimeError("the handover job runs inside the customer service's runtime")
    store = CustomerStore(ctx.runtime.db, ctx.runtime.state.get("vault"))
    return CustomerService(ctx.runtime.uow, store, CustomFieldStore(ctx.runtime.db))


async def transfer(
    customers: CustomerService,
    tenant: str,
    customer_id: str,
    *,
    from_owner: str,
    to_owner: str,
    reason: str,
    actor: Actor,
) -> str | None:
    """Move one customer if `from_owner` still owns them; the reason it was skipped
    otherwise (someone reassigned, merged or erased them meanwhile: never overwritten)."""

    async def work(tx: Tx) -> str | None:
        customer = await customers.store.get(tenant, customer_id, session=tx.session)
        if customer is None or customer.status != "active":
            return "skipped: the customer is no longer active"
        if customer.owner_id != from_owner:
            return f"skipped: reassigned meanwhile to {customer.owner_id or 'nobody'}"
        await customers.reassign(tx, customer, to_owner, reason=reason, actor=actor)
        return None

    try:
        return await customers.uow.run(work)
    except DomainError as exc:  # the owner moved between our read and our write
        return f"skipped: {exc.detail}"


async def run_handover(ctx: JobContext) -> dict[str, Any]:
    plan = HandoverPlan.model_validate(ctx.params)
    customers = service_for(ctx)
    mark = HandoverCheckpoint.model_validate(ctx.checkpoint or {})
    ids = await customers.store.owned_by(ctx.tenant, plan.from_owner)
    if ctx.total is None:
        ctx.set_total(len(ids))
    actor = Actor(id=ctx.job.created_by, kind="staff")
    for customer_id in (i for i in ids if i > mark.after):
        if ctx.cancelled:
            break
        to_owner = successor(plan, mark.moved)
        skipped = await transfer(
            customers,
            ctx.tenant,
            customer_id,
            from_owner=plan.from_owner,
            to_owner=to_owner,
            reason=plan.change_reason,
            actor=actor,
        )
        mark = HandoverCheckpoint(after=customer_id, moved=mark.moved + (skipped is None))
        errors = [ItemError(item=customer_id, reason=skipped)] if skipped else []
        await ctx.progress(
            processed=1,
            succeeded=int(skipped is None),
            failed=int(skipped is not None),
            errors=errors,
            checkpoint=mark.model_dump(),
        )
    return {"moved": mark.moved}


HANDLERS: dict[str, JobHandler] = {HANDOVER: run_handover}

"""Lifecycle stage rules: lead → prospect → customer → at risk → churned, and back."""

from __future__ import annotations

from datetime import datetime

from servicekit.errors import DomainError
from services.customer.domain.customer import Customer, LifecycleStage, StageChange

BEFORE_FIRST_ORDER = frozenset({LifecycleStage.LEAD, LifecycleStage.PROSPECT})


def stage_change(
    customer: Customer, to_stage: LifecycleStage, *, reason: str, at: datetime, by: str
) -> StageChange:
    """Any move is allowed with a reason except standing still: ops correct stages by hand,
    rules move them automatically; every move is kept in the history."""
    if to_stage == customer.lifecycle_stage:
        raise DomainError(
            f"the customer is already {to_stage}", code="stage_unchanged", field="to_stage"
        )
    if not reason.strip():
        raise DomainError("a stage change needs a reason", code="reason_required")
    return StageChange(
        from_stage=customer.lifecycle_stage, to_stage=to_stage, reason=reason, at=at, by=by
    )


def promotion_after_first_order(customer: Customer, *, at: datetime) -> StageChange | None:
    if customer.lifecycle_stage not in BEFORE_FIRST_ORDER:
        return None
    return StageChange(
        from_stage=customer.lifecycle_stage,
        to_stage=LifecycleStage.CUSTOMER,
        reason="first_order",
        # An order reported late (or imported) may predate the profile; the stage cannot.
        at=max(at, customer.registered_at),
    )

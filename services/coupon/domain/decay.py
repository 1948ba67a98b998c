"""Random red packet decay (随机红包衰减): a customer's repeated claims of one random batch
are worth less and less, with one schedule for new customers (no paid order yet) and one for
returning customers. Pure: no I/O.

The drawn amount of the n-th claim is scaled by the schedule's n-th factor (the last factor
holds for every later claim), rounded down to whole minor units, and never below the
policy's floor. Because each schedule is non-increasing and a factor is at most 1, the
decayed amount never exceeds the drawn one (so never the batch's `max_amount`, and approval
reserves no more than before), never falls below the floor, and never grows with the claim
count."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, Field, model_validator

if TYPE_CHECKING:
    from services.coupon.domain.batches import BatchSpec

#: One claim's factor: a share of the drawn amount in (0, 1].
Factor = Annotated[float, Field(gt=0, le=1)]
MAX_STEPS = 20


class DecayPolicy(BaseModel):
    """Factors for the 1st, 2nd, ... claim of the batch by one customer."""

    new_customers: list[Factor] = Field(min_length=1, max_length=MAX_STEPS)
    returning_customers: list[Factor] = Field(min_length=1, max_length=MAX_STEPS)
    #: The least a decayed packet is worth, in minor units (分); at most the batch's
    #: `min_amount`, so an undecayed draw is never raised by it.
    floor: int = Field(1, ge=1, le=10_000_000)

    @model_validator(mode="after")
    def _non_increasing(self) -> DecayPolicy:
        for name in ("new_customers", "returning_customers"):
            factors = getattr(self, name)
            if any(later > earlier for earlier, later in itertools.pairwise(factors)):
                raise ValueError(f"{name} factors must not increase with the claim count")
        return self

    def factor(self, claim_number: int, *, new_customer: bool) -> float:
        """The factor of the customer's `claim_number`-th claim (1 = first)."""
        factors = self.new_customers if new_customer else self.returning_customers
        return factors[min(max(claim_number, 1), len(factors)) - 1]

    def apply(self, drawn: int, claim_number: int, *, new_customer: bool) -> int:
        """The drawn amount decayed for this claim: at least the floor, at most `drawn`."""
        # Decimal of the factor's shortest repr: 100 x 0.29 is 29, not 28.999...
        factor = Decimal(repr(self.factor(claim_number, new_customer=new_customer)))
        scaled = math.floor(drawn * factor)
        return min(drawn, max(self.floor, scaled))


def decayed_face_value(
    drawn: int, spec: BatchSpec, claim_number: int | str, new_customer: bool | None
) -> int:
    """A freshly drawn face value after the batch's decay policy, if it has one.

    `claim_number` is the slot the coupon takes among the customer's coupons of the batch
    (a return coupon's slot is its order reference: it does not decay). A customer whose
    order history is not known is treated as returning: the smaller packet."""
    policy = spec.random_decay
    if policy is None or not isinstance(claim_number, int):
        return drawn
    return policy.apply(drawn, claim_number, new_customer=bool(new_customer))

"""Refunds of an order that used a coupon.

Policy: the discount is split over the order's lines when the coupon is locked, pro rata
to each line's amount among the lines the coupon applies to (the shares add up to the
discount exactly). A partial refund gives back, of the subsidy charged, the share of the
refunded quantities; the coupon stays used, since the customer kept part of the order
(and the retailer deducts that share from the money refunded, as the order's terms say).
Once every line is refunded, the order is wholly refunded: the rest of the discount is
given back and the coupon returns to the wallet if its batch allows and it is still valid.
A shipping-fee coupon carries no line shares: only a whole refund gives it back."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.coupon.domain.batches import ID_PATTERN
from services.coupon.domain.checkout import OrderDraft, OrderLine
from services.coupon.domain.coupons import LineShare


class RefundLine(BaseModel):
    line_id: str = Field(pattern=ID_PATTERN)
    quantity: int = Field(ge=1, le=10_000)


def split_discount(
    discount: int, order: OrderDraft, eligible: list[OrderLine]
) -> dict[str, LineShare]:
    """Every line's share of `discount`, pro rata to the eligible lines' amounts (largest
    remainder, so the shares add up to it exactly); other lines carry 0."""
    weights = {ln.line_id: ln.price * ln.quantity for ln in eligible}
    total = sum(weights.values())
    amounts = {ln.line_id: 0 for ln in order.lines}
    if discount > 0 and total > 0:
        for line_id, weight in weights.items():
            amounts[line_id] = discount * weight // total
        short = discount - sum(amounts.values())
        by_remainder = sorted(weights, key=lambda i: -(discount * weights[i] % total))
        for line_id in by_remainder[:short]:
            amounts[line_id] += 1
    return {
        ln.line_id: LineShare(amount=amounts[ln.line_id], quantity=ln.quantity)
        for ln in order.lines
    }


def _part(share: LineShare, quantity: int) -> int:
    return share.amount * quantity // share.quantity


def given_back(
    shares: dict[str, LineShare], refunded: dict[str, int], refund: list[RefundLine]
) -> tuple[int, dict[str, int]]:
    """What `refund` gives back of the discount, and the quantities refunded after it.
    Quantities beyond a line's are capped, and lines the order did not have carry nothing;
    rounding is settled on the cumulative quantity, so a line refunded piece by piece gives
    back exactly its share in the end."""
    after = dict(refunded)
    for line in refund:
        share = shares.get(line.line_id)
        if share is not None:
            after[line.line_id] = min(share.quantity, after.get(line.line_id, 0) + line.quantity)
    back = sum(
        _part(share, after.get(i, 0)) - _part(share, refunded.get(i, 0))
        for i, share in shares.items()
    )
    return back, after


def wholly_refunded(shares: dict[str, LineShare], refunded: dict[str, int]) -> bool:
    return bool(shares) and all(refunded.get(i, 0) >= s.quantity for i, s in shares.items())

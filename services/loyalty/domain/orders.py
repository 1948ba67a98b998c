"""What an order earned, kept so its refunds and a void take back exactly that.

One record per order: each line's points and how much of it is refunded, the bonuses, the
growth value, and the refunds seen (a refund is applied once, by its id). Pure."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from services.loyalty.domain.earning import LineEarning, OrderPoints, refund_points


class OrderEarning(BaseModel):
    model_config = ConfigDict(frozen=True)

    order_id: str
    customer_id: str
    amount: int
    paid_at: datetime
    lines: list[LineEarning]
    bonus: int = 0
    bonuses: list[str] = []
    bonus_reversed: bool = False
    #: Whether the points were held for the return window when earned.
    held: bool = False
    growth: int = 0
    refunded_amount: int = 0
    growth_reversed: int = 0
    refund_ids: list[str] = []
    voided: bool = False
    version: int = 0

    @property
    def source(self) -> str:
        """The ledger source of the earning; its lots carry it, so reversals find them."""
        return f"order:{self.order_id}"

    @property
    def points(self) -> int:
        return sum(line.points for line in self.lines) + self.bonus


def earned(
    order_id: str,
    customer_id: str,
    amount: int,
    paid_at: datetime,
    points: OrderPoints,
    *,
    held: bool,
    growth: int,
) -> OrderEarning:
    return OrderEarning(
        order_id=order_id,
        customer_id=customer_id,
        amount=amount,
        paid_at=paid_at,
        lines=points.lines,
        bonus=points.bonus,
        bonuses=points.bonuses,
        held=held,
        growth=growth,
    )


class Reversal(BaseModel):
    """What a refund or void takes back."""

    points: int
    growth: int
    line_ids: list[str]


def refund(
    earning: OrderEarning,
    refund_id: str,
    refunded: dict[str, int],
    *,
    fully_refunded: bool,
) -> tuple[OrderEarning, Reversal]:
    """`refunded`: amount per line id of this refund. Lines not earned here are ignored;
    the bonuses go back once the whole order is refunded."""
    lines, points, touched = [], 0, []
    for line in earning.lines:
        amount = refunded.get(line.line_id, 0)
        if amount:
            line, taken = refund_points(line, amount)
            points += taken
            touched.append(line.line_id)
        lines.append(line)
    refunded_amount = min(earning.refunded_amount + sum(refunded.values()), earning.amount)
    after = earning.model_copy(
        update={
            "lines": lines,
            "refund_ids": [*earning.refund_ids, refund_id],
            "refunded_amount": refunded_amount,
        }
    )
    return _with_growth_and_bonus(earning, after, points, touched, all_back=fully_refunded)


def void(earning: OrderEarning) -> tuple[OrderEarning, Reversal]:
    """A paid order cancelled: everything not yet taken back goes."""
    lines, points = [], 0
    for line in earning.lines:
        line, taken = refund_points(line, line.amount - line.refunded_amount)
        points += taken
        lines.append(line)
    after = earning.model_copy(
        update={"lines": lines, "refunded_amount": earning.amount, "voided": True}
    )
    touched = [line.line_id for line in earning.lines]
    return _with_growth_and_bonus(earning, after, points, touched, all_back=True)


def _with_growth_and_bonus(
    before: OrderEarning, after: OrderEarning, points: int, touched: list[str], *, all_back: bool
) -> tuple[OrderEarning, Reversal]:
    if all_back and not after.bonus_reversed:
        points += after.bonus
        after = after.model_copy(update={"bonus_reversed": True})
    due = before.growth * after.refunded_amount // before.amount if before.amount else 0
    if all_back:
        due = before.growth
    growth = due - before.growth_reversed
    after = after.model_copy(update={"growth_reversed": due})
    return after, Reversal(points=points, growth=growth, line_ids=touched)

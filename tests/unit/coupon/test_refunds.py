"""The refund policy's arithmetic: shares add up to the discount, a line refunded piece by
piece gives back exactly its share, and nothing is given back twice or beyond a line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.coupon.domain.checkout import OrderDraft, OrderLine
from services.coupon.domain.refunds import RefundLine, given_back, split_discount, wholly_refunded


def order(*lines: tuple[int, int]) -> OrderDraft:
    return OrderDraft(
        order_id="o-1",
        lines=[
            OrderLine(line_id=str(n), product_id=f"p-{n}", price=price, quantity=qty)
            for n, (price, qty) in enumerate(lines, start=1)
        ],
    )


def test_the_discount_is_split_pro_rata_and_adds_up_exactly() -> None:
    draft = order((8_000, 1), (4_000, 1))
    shares = split_discount(1_000, draft, draft.lines)
    assert {i: s.amount for i, s in shares.items()} == {"1": 667, "2": 333}


def test_lines_the_coupon_does_not_apply_to_carry_nothing() -> None:
    draft = order((8_000, 1), (4_000, 1))
    shares = split_discount(1_000, draft, draft.lines[1:])
    assert {i: s.amount for i, s in shares.items()} == {"1": 0, "2": 1_000}


def test_a_partial_refund_gives_back_the_refunded_quantitys_share_and_caps_quantities() -> None:
    draft = order((4_000, 3), (6_000, 1))
    shares = split_discount(1_000, draft, draft.lines)  # 667 over 3 pieces, 333
    first, after = given_back(shares, {}, [RefundLine(line_id="1", quantity=1)])
    assert (first, after) == (222, {"1": 1})
    assert not wholly_refunded(shares, after)
    again, after = given_back(shares, after, [RefundLine(line_id="1", quantity=5)])
    assert (first + again, after) == (667, {"1": 3})
    unknown, same = given_back(shares, after, [RefundLine(line_id="9", quantity=1)])
    assert (unknown, same) == (0, after)
    rest, after = given_back(shares, after, [RefundLine(line_id="2", quantity=1)])
    assert first + again + rest == 1_000 and wholly_refunded(shares, after)


line = st.tuples(st.integers(0, 100_000), st.integers(1, 20))


@given(
    st.lists(line, min_size=1, max_size=8),
    st.integers(0, 50_000),
    st.randoms(use_true_random=False),
)
def test_refunding_every_piece_in_any_order_gives_back_exactly_the_discount(
    lines: list[tuple[int, int]], discount: int, rng: object
) -> None:
    draft = order(*lines)
    total = sum(p * q for p, q in lines)
    discount = min(discount, total)
    shares = split_discount(discount, draft, draft.lines)
    assert sum(s.amount for s in shares.values()) == discount
    pieces = [ln.line_id for ln in draft.lines for _ in range(ln.quantity)]
    rng.shuffle(pieces)  # type: ignore[attr-defined]
    refunded: dict[str, int] = {}
    back = 0
    for piece in pieces:
        step, refunded = given_back(shares, refunded, [RefundLine(line_id=piece, quantity=1)])
        assert step >= 0
        back += step
    assert back == discount and wholly_refunded(shares, refunded)

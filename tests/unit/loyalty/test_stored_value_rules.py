"""Stored-value rules over random sequences: principal and bonus never go negative, every
movement's changes add up to the balances, refunds never pay out bonus."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicekit.errors import DomainError
from services.loyalty.domain import stored_value as sv

AT = datetime(2026, 1, 1, tzinfo=UTC)
SCHEMES = st.sampled_from(
    [
        sv.StoredValueScheme(offers=[sv.TopUpOffer(min_amount=1_000, bonus=100)]),
        sv.StoredValueScheme(
            offers=[sv.TopUpOffer(min_amount=500, bonus=50)], spend_order=sv.SpendOrder.BONUS_FIRST
        ),
    ]
)
OPS = st.lists(
    st.tuples(
        st.sampled_from(["top_up", "spend", "refund", "freeze", "unfreeze"]), st.integers(1, 3_000)
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(SCHEMES, OPS)
def test_balances_never_go_negative_and_equal_the_sum_of_movements(
    scheme: sv.StoredValueScheme, ops: list[tuple[str, int]]
) -> None:
    account = sv.StoredValueAccount(customer_id="c")
    entries: list[sv.ValueEntry] = []
    for n, (op, amount) in enumerate(ops):
        kw = {"source": f"s{n}", "at": AT}
        try:
            if op == "top_up":
                account, entry = sv.top_up(account, scheme, amount, reference="p", **kw)
            elif op == "spend":
                account, entry = sv.spend(account, scheme, amount, reference="o", **kw)
            elif op == "refund":
                account, entry = sv.refund(account, amount, reference="r", operator="op", **kw)
                assert entry.principal == -amount
            else:
                frozen = op == "freeze"
                account, entry = sv.set_frozen(
                    account, frozen, reason="why", operator="op", source=f"s{n}", at=AT
                )
        except DomainError:
            continue
        entries.append(entry)
        assert account.principal >= 0 and account.bonus >= 0
        assert account.principal == sum(e.principal for e in entries)
        assert account.bonus == sum(e.bonus for e in entries)


def test_a_spend_beyond_the_balance_is_refused() -> None:
    account = sv.StoredValueAccount(customer_id="c", principal=100, bonus=10)
    with pytest.raises(sv.InsufficientBalance):
        sv.spend(account, sv.StoredValueScheme(), 111, source="s", reference="o", at=AT)

"""Merge rules, pure: what a survivor takes, what an undo gives back, which consent and
statistics win, and when a merge or its undo is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from servicekit.errors import Conflict
from services.customer.domain import merge as rules
from services.customer.domain.consent import Channel, Consent, ConsentState, Purpose
from services.customer.domain.customer import (
    Address,
    Customer,
    Identity,
    IdentityKind,
    LifecycleStage,
    OwnerChange,
    SourceChannel,
    Status,
)
from services.customer.domain.orders import Order, OrderStatus
from services.customer.domain.purchase_stats import PurchaseStats

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def customer(n: int, **fields: Any) -> Customer:
    return Customer(
        id=f"cus_{n:032x}",
        tenant="t1",
        display_name=f"Customer {n}",
        source_channel=SourceChannel.STORE,
        lifecycle_stage=LifecycleStage.LEAD,
        registered_at=T0,
        updated_at=T0,
        **fields,
    )


def union(value: str) -> Identity:
    return Identity(kind=IdentityKind.UNION_ID, value=value)


def consent(customer_id: str, state: ConsentState, at: datetime, version: int = 1) -> Consent:
    return Consent(
        tenant="t1",
        customer_id=customer_id,
        channel=Channel.SMS,
        purpose=Purpose.MARKETING,
        state=state,
        source="store_form",
        recorded_by="advisor-1",
        changed_at=at,
        version=version,
    )


def test_duplicate_reasons_name_every_exact_match() -> None:
    a = customer(1, mobile="+8613800000001", email="a@x.cn", identities=[union("u1")])
    b = customer(2, mobile="+8613800000001", email="a@x.cn", identities=[union("u1")])
    c = customer(3, mobile="+8613800000009")
    assert rules.duplicate_reasons(a, b) == ["mobile", "email", "union_id"]
    assert rules.duplicate_reasons(a, c) == []


def test_survivor_fills_only_what_it_lacks_and_appends_history() -> None:
    owner = OwnerChange(from_owner=None, to_owner="adv-2", reason="registered", at=T0, by="x")
    survivor = customer(1, mobile="+8613800000001", custom_fields={"size": "M"})
    merged = customer(
        2,
        mobile="+8613800000002",
        email="b@x.cn",
        birthday=date(1990, 1, 2),
        address=Address(city="Hangzhou", street="1 Road"),
        custom_fields={"size": "L", "colour": "red"},
        identities=[union("u2")],
        owner_history=[owner],
    )
    after, gains = rules.absorb(survivor, merged, at=T0 + timedelta(hours=1))

    assert after.mobile == "+8613800000001"  # the survivor's own value stays
    assert after.email == "b@x.cn" and after.birthday == date(1990, 1, 2)
    assert after.custom_fields == {"size": "M", "colour": "red"}
    assert after.identities == [union("u2")]
    assert after.owner_history == [owner]
    assert set(gains.fields) == {"email", "birthday", "address"}
    assert gains.custom_fields == {"colour": "red"}


def test_separate_gives_back_exactly_what_was_gained() -> None:
    survivor = customer(1, mobile="+8613800000001", identities=[union("u1")])
    merged = customer(2, email="b@x.cn", identities=[union("u2")], custom_fields={"k": 1})
    after, gains = rules.absorb(survivor, merged, at=T0)
    back = rules.separate(after, gains, at=T0)
    assert back == survivor


def test_separate_keeps_a_gained_value_changed_since() -> None:
    survivor = customer(1)
    merged = customer(2, email="b@x.cn")
    after, gains = rules.absorb(survivor, merged, at=T0)
    edited = after.model_copy(update={"email": "new@x.cn"})
    assert rules.separate(edited, gains, at=T0).email == "new@x.cn"


@pytest.mark.parametrize(
    ("survivor", "merged", "code"),
    [
        (customer(1), customer(1), "same_customer"),
        (customer(1, status=Status.MERGED), customer(2), "customer_merged"),
        (customer(1), customer(2, status=Status.ERASED), "customer_erased"),
    ],
)
def test_refused_merges(survivor: Customer, merged: Customer, code: str) -> None:
    with pytest.raises(Conflict) as refused:
        rules.check_mergeable(survivor, merged)
    assert refused.value.code == code


def record(**overrides: Any) -> rules.MergeRecord:
    fields: dict[str, Any] = {
        "id": rules.new_merge_id(),
        "tenant": "t1",
        "survivor_id": customer(1).id,
        "merged_id": customer(2).id,
        "reason": "same person",
        "merged_by": "ops",
        "merged_at": T0,
        "undo_until": rules.undo_until(T0, 30),
        "gains": rules.MergeGains(),
        "survivor_before": customer(1),
        "merged_before": customer(2),
    }
    return rules.MergeRecord(**(fields | overrides))


def test_undo_is_refused_after_the_window_when_undone_or_survivor_merged_again() -> None:
    rules.check_undoable(record(), customer(1), now=T0 + timedelta(days=29))
    cases = [
        (record(), customer(1), T0 + timedelta(days=31), "undo_window_passed"),
        (record(status="undone"), customer(1), T0, "merge_undone"),
        (record(), customer(1, status=Status.MERGED), T0, "survivor_merged"),
        (record(merged_before=None), customer(1), T0, "customer_erased"),
    ]
    for merge, survivor, now, code in cases:
        with pytest.raises(Conflict) as refused:
            rules.check_undoable(merge, survivor, now=now)
        assert refused.value.code == code


def test_the_newest_consent_decision_wins() -> None:
    a, b = customer(1).id, customer(2).id
    mine = [consent(a, ConsentState.GRANTED, T0)]
    newer_no = [consent(b, ConsentState.WITHDRAWN, T0 + timedelta(days=1))]
    older_no = [consent(b, ConsentState.WITHDRAWN, T0 - timedelta(days=1))]

    [changed] = rules.consent_overrides(mine, newer_no, by="ops", at=T0 + timedelta(days=2))
    assert changed.customer_id == a and changed.state is ConsentState.WITHDRAWN
    assert changed.version == 2 and changed.source == "merge"
    assert rules.consent_overrides(mine, older_no, by="ops", at=T0) == []
    assert rules.consents_to_move(mine, newer_no) == []
    assert rules.consents_to_move([], newer_no) == newer_no


def test_statistics_add_up_and_refuse_mixed_currencies() -> None:
    a = PurchaseStats(
        customer_id="a",
        currency="CNY",
        order_count=2,
        total_paid=300,
        total_refunded=50,
        first_purchase_at=T0,
        last_purchase_at=T0 + timedelta(days=3),
        first_order_id="o1",
        version=4,
    )
    b = PurchaseStats(
        customer_id="b",
        currency="CNY",
        order_count=1,
        total_paid=100,
        first_purchase_at=T0 - timedelta(days=1),
        last_purchase_at=T0 - timedelta(days=1),
        first_order_id="o9",
        version=1,
    )
    both = rules.combined_stats(a, b, survivor_id="a", at=T0)
    assert both is not None
    assert (both.order_count, both.total_paid, both.total_refunded) == (3, 400, 50)
    assert both.first_purchase_at == b.first_purchase_at
    assert both.last_purchase_at == a.last_purchase_at
    assert both.first_order_id == "o9" and both.version == 4
    assert rules.combined_stats(a, None, survivor_id="a", at=T0) is None
    usd = b.model_copy(update={"currency": "USD"})
    with pytest.raises(Conflict):
        rules.combined_stats(a, usd, survivor_id="a", at=T0)


def order(order_id: str, paid_at: datetime | None, **fields: Any) -> Order:
    status = OrderStatus.PAID if paid_at else OrderStatus.CANCELLED
    return Order(
        order_id=order_id,
        customer_id="a",
        status=fields.pop("status", status),
        amount=100,
        paid_at=paid_at,
        cancelled_at=None if paid_at else T0,
        reported_at=T0,
        **fields,
    )


def test_statistics_recounted_from_the_orders_held() -> None:
    held = [
        order("o1", T0, first_order=True, refunded_amount=30),
        order("o2", T0 + timedelta(days=5)),
        order("o3", T0 + timedelta(days=9), status=OrderStatus.CANCELLED),
        order("o4", None),
    ]
    stats = rules.stats_from_orders(PurchaseStats(customer_id="a", version=3), held, at=T0)
    assert stats is not None
    assert (stats.order_count, stats.total_paid, stats.total_refunded) == (2, 200, 30)
    assert stats.last_purchase_at == T0 + timedelta(days=5)
    assert stats.first_order_id == "o1" and stats.version == 3
    assert rules.stats_from_orders(PurchaseStats(customer_id="a"), [], at=T0) is None

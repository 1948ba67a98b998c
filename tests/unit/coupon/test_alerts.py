"""Alert rules: the budget line (approvals blocked from the committed share, issuing only
from the consumed share), the stock projection over a recent-window rate, the efficiency
comparison with comparable unsubsidised peers, and when an update is worth it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.coupon.domain.alerts import (
    AlertKind,
    EfficiencyPolicy,
    Finding,
    RecentRate,
    Severity,
    StockView,
    SubjectGmv,
    UpdatePolicy,
    approvals_blocked,
    budget_finding,
    budget_line,
    efficiency_findings,
    issuing_blocked,
    raised,
    sell_out_at,
    stock_finding,
    worth_update,
)
from services.coupon.domain.budgets import Budget, OwnerKind
from services.coupon.store.stats import GmvLine, spread

NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)


def budget(
    amount: int = 100_000,
    reserved: int = 0,
    thresholds: list[int] | None = None,
    consumed: int = 0,
) -> Budget:
    return Budget(
        id="bud_1",
        name="Q4",
        owner_kind=OwnerKind.DEPARTMENT,
        owner="growth",
        parent_id=None,
        amount=amount,
        reserved=reserved,
        consumed=consumed,
        remaining=amount - reserved - consumed,
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(days=30),
        alert_thresholds=thresholds or [80, 95],
        created_at=NOW,
    )


def test_the_budget_alert_holds_from_the_highest_threshold_and_names_the_owner() -> None:
    assert budget_line(budget()) == 5_000
    assert budget_finding(budget(reserved=94_999), NOW) is None
    at_line = budget_finding(budget(reserved=95_000), NOW)
    assert at_line is not None and at_line.severity == Severity.CRITICAL
    assert (at_line.owner, at_line.budget_id, at_line.measures["remaining"]) == (
        "growth", "bud_1", 5_000
    )  # fmt: skip
    assert at_line.key == "budget:budget:bud_1"
    # A top-up (a larger amount) clears it; an ended budget blocks nothing.
    assert budget_finding(budget(amount=200_000, reserved=95_000), NOW) is None
    assert budget_finding(budget(reserved=99_000), NOW + timedelta(days=31)) is None


@given(
    amount=st.integers(1, 10**9),
    share=st.integers(0, 100),
    top=st.integers(1, 100),
)
def test_the_budget_alert_holds_exactly_when_remaining_is_at_or_below_the_line(
    amount: int, share: int, top: int
) -> None:
    reserved = amount * share // 100
    b = budget(amount=amount, reserved=reserved, thresholds=[top])
    holds = budget_finding(b, NOW) is not None
    assert holds == (reserved * 100 >= top * amount)
    if holds:
        assert b.remaining <= budget_line(b)


def test_a_budget_committed_past_its_line_blocks_approvals_but_issuing_only_once_spent() -> None:
    # The approval that reserves 96% funds its own coupons: approvals stop, issuing goes on.
    reserved = budget(reserved=96_000)
    assert approvals_blocked(reserved, NOW) and not issuing_blocked(reserved, NOW)
    found = budget_finding(reserved, NOW)
    assert found is not None and found.blocks_issuing is False
    assert "still issue" in found.detail
    # Fully reserved, nothing used yet: still issuing.
    assert not issuing_blocked(budget(reserved=100_000), NOW)
    # Used coupons took 95% (amount - consumed = 5,000, the line): issuing stops too.
    spent = budget(reserved=1_000, consumed=95_000)
    assert issuing_blocked(spent, NOW)
    found = budget_finding(spent, NOW)
    assert found is not None and found.blocks_issuing is True
    assert (found.measures["consumed"], found.measures["consumed_percent"]) == (95_000, 95.0)
    assert not issuing_blocked(budget(reserved=5_000, consumed=94_999), NOW)
    # A top-up lifts amount - consumed above the line; an ended budget blocks nothing.
    assert not issuing_blocked(budget(amount=102_000, reserved=1_000, consumed=95_000), NOW)
    assert not issuing_blocked(spent, NOW + timedelta(days=31))
    assert not approvals_blocked(spent, NOW + timedelta(days=31))


@given(
    amount=st.integers(1, 10**9),
    committed_share=st.integers(0, 100),
    consumed_part=st.integers(0, 100),
    top=st.integers(1, 100),
)
def test_approvals_block_on_the_committed_share_and_issuing_on_the_consumed_share(
    amount: int, committed_share: int, consumed_part: int, top: int
) -> None:
    committed = amount * committed_share // 100
    consumed = committed * consumed_part // 100
    b = budget(amount, reserved=committed - consumed, thresholds=[top], consumed=consumed)
    line = budget_line(b)
    assert approvals_blocked(b, NOW) == (b.remaining <= line)
    assert issuing_blocked(b, NOW) == (amount - consumed <= line)
    if issuing_blocked(b, NOW):
        assert approvals_blocked(b, NOW)  # issuing never blocks without the alert
    found = budget_finding(b, NOW)
    assert (found is not None) == approvals_blocked(b, NOW)
    if found is not None:
        assert found.blocks_issuing == issuing_blocked(b, NOW)
    unspent = budget(amount, reserved=committed, thresholds=[top])
    assert not issuing_blocked(unspent, NOW)  # reserved, however much, never blocks issuing


def test_the_recent_rate_counts_claims_in_the_window_only() -> None:
    rate = RecentRate(window=10)
    for s in range(20):
        rate.add(NOW + timedelta(seconds=s), count=2)
    later = NOW + timedelta(seconds=19)
    assert rate.count(later) == 2 * 11  # seconds 9..19
    assert rate.per_second(later) == 2.2
    rate.add(NOW + timedelta(seconds=15))  # late, out of order
    assert rate.count(later) == 23
    assert rate.count(later + timedelta(seconds=60)) == 0


def view(left: int, claim_until: datetime, stock: int = 1_000) -> StockView:
    return StockView("bat_1", "flash", stock, left, claim_until, True, "bud_1", "growth")


def test_stock_alerts_when_the_rate_runs_out_before_the_window_ends() -> None:
    hour = NOW + timedelta(hours=1)
    # 500 left at 1/s: gone in 500 s, the window ends in 3600 s.
    found = stock_finding(view(500, hour), claims=300, per_second=1.0, now=NOW, min_claims=20)
    assert found is not None and found.severity == Severity.WARNING
    assert found.measures["seconds_to_sell_out"] == 500.0
    assert found.measures["seconds_before_window_end"] == 3_100.0
    assert (found.owner, found.budget_id) == ("growth", "bud_1")
    # Slow enough to last: no alert; too few claims to judge: no alert.
    assert stock_finding(view(500, hour), 300, 0.1, NOW, min_claims=20) is None
    assert stock_finding(view(5, hour), 10, 1.0, NOW, min_claims=20) is None
    # Sold out before the window ends: critical, whatever the rate now.
    gone = stock_finding(view(0, hour), 0, 0.0, NOW, min_claims=20)
    assert gone is not None and gone.severity == Severity.CRITICAL
    # The window over, or the batch not active: nothing to warn about.
    assert stock_finding(view(0, NOW), 0, 0.0, NOW, min_claims=20) is None


@given(
    left=st.integers(1, 10**6),
    per_second=st.floats(0.001, 10_000),
    window=st.integers(1, 90 * 86_400),
)
def test_the_projection_alerts_exactly_when_sell_out_comes_first(
    left: int, per_second: float, window: int
) -> None:
    until = NOW + timedelta(seconds=window)
    found = stock_finding(view(left, until), 10**6, per_second, NOW, min_claims=1)
    out = sell_out_at(left, per_second, NOW)
    assert out is not None
    assert (found is not None) == (out < until)


def row(subject: str, base: int, current: int, subsidy: int = 0, group: str = "") -> SubjectGmv:
    return SubjectGmv(
        subject_kind="merchant",
        subject_id=subject,
        group=group,
        base_gmv=base,
        current_gmv=current,
        subsidy=subsidy,
        budget_id="bud_1" if subsidy else None,
        owner="growth" if subsidy else None,
    )


def test_efficiency_flags_subsidised_subjects_not_beating_the_median_of_unsubsidised_peers() -> (
    None
):
    peers = [row("p1", 1_000, 1_200), row("p2", 1_000, 1_500), row("p3", 1_000, 1_100)]
    policy = EfficiencyPolicy(min_peers=3, min_subsidy=10)
    found = efficiency_findings([*peers, row("s", 1_000, 1_150, subsidy=100)], policy)
    assert [f.subject_id for f in found] == ["s"]
    assert found[0].measures["benchmark_percent"] == 20.0
    assert found[0].measures["growth_percent"] == 15.0
    assert (found[0].budget_id, found[0].owner) == ("bud_1", "growth")
    # Beating the median: fine. Too few peers, too little subsidy, no base: no judgement.
    assert not efficiency_findings([*peers, row("s", 1_000, 1_300, subsidy=100)], policy)
    assert not efficiency_findings([*peers[:2], row("s", 1_000, 1_000, subsidy=100)], policy)
    assert not efficiency_findings([*peers, row("s", 1_000, 1_000, subsidy=5)], policy)
    assert not efficiency_findings([*peers, row("s", 0, 1_000, subsidy=100)], policy)
    # A margin: beating the median by less than it is not enough.
    strict = EfficiencyPolicy(min_peers=3, min_subsidy=10, margin_points=20)
    assert efficiency_findings([*peers, row("s", 1_000, 1_300, subsidy=100)], strict)


def test_products_are_compared_within_their_category_when_it_has_enough_peers() -> None:
    def product(sku: str, group: str, base: int, current: int, subsidy: int = 0) -> SubjectGmv:
        return row(sku, base, current, subsidy, group).model_copy(
            update={"subject_kind": "product"}
        )

    shoes = [product(f"s{n}", "shoes", 100, 300) for n in range(3)]  # +200%
    bags = [product(f"b{n}", "bags", 100, 110) for n in range(3)]  # +10%
    policy = EfficiencyPolicy(min_peers=3, min_subsidy=1)
    subsidised_bag = product("bag-x", "bags", 100, 150, subsidy=10)  # +50%: beats bags
    assert not efficiency_findings([*shoes, *bags, subsidised_bag], policy)
    subsidised_hat = product("hat-x", "hats", 100, 150, subsidy=10)  # no hat peers: all
    assert [f.subject_id for f in efficiency_findings([*shoes, *bags, subsidised_hat], policy)]


def test_an_update_needs_time_and_a_real_move() -> None:
    finding = Finding(
        kind=AlertKind.STOCK, subject_kind="batch", subject_id="b", severity=Severity.WARNING,
        title="t", detail="d", measures={"left": 100.0, "claims_per_second": 5.0},
    )  # fmt: skip
    alert = raised("alr_1", finding, NOW)
    policy = UpdatePolicy(min_seconds=10, min_change_percent=10)
    moved = finding.model_copy(update={"measures": {"left": 80.0, "claims_per_second": 5.0}})
    nudged = finding.model_copy(update={"measures": {"left": 95.0, "claims_per_second": 5.2}})
    later = NOW + timedelta(seconds=11)
    assert not worth_update(alert, moved, NOW + timedelta(seconds=5), policy)  # too soon
    assert worth_update(alert, moved, later, policy)
    assert not worth_update(alert, nudged, later, policy)  # trivial change
    critical = finding.model_copy(update={"severity": Severity.CRITICAL})
    assert worth_update(alert, critical, NOW, policy)  # severity always counts


def test_a_budget_alert_is_updated_at_once_when_its_issuing_block_changes() -> None:
    reserved = budget_finding(budget(reserved=96_000), NOW)
    spent = budget_finding(budget(reserved=1_000, consumed=95_000), NOW)
    assert reserved is not None and spent is not None
    alert = raised("alr_1", reserved, NOW)
    assert alert.blocks_issuing is False
    policy = UpdatePolicy(min_seconds=10, min_change_percent=10)
    assert worth_update(alert, spent, NOW, policy)  # not held back by min_seconds
    assert not worth_update(alert, reserved, NOW + timedelta(seconds=60), policy)
    # A budget alert stored before the two blocks were told apart gets its block set.
    legacy = alert.model_copy(update={"blocks_issuing": None})
    assert worth_update(legacy, reserved, NOW, policy)


@given(
    amount=st.integers(0, 10**9),
    line_amounts=st.lists(st.integers(1, 10**7), min_size=1, max_size=20),
)
def test_a_refund_without_lines_is_spread_over_the_order_lines_exactly(
    amount: int, line_amounts: list[int]
) -> None:
    lines = [GmvLine(line_id=str(n), sku=f"s{n}", amount=a) for n, a in enumerate(line_amounts)]
    shares = spread(amount, lines)
    assert sum(shares.values()) == amount
    assert set(shares) == {ln.line_id for ln in lines}
    assert all(v >= 0 for v in shares.values())

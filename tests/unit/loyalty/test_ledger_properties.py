"""Ledger invariants after random sequences of operations (hypothesis): the balance equals
the sum of the entries, held points the sum of their pending changes, debt and spendable
lots never coexist, no lot goes below zero, and spends take the first-expiring lot first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.loyalty.domain import ledger, merging
from services.loyalty.domain.ledger import Cause, EntryKind, InsufficientPoints, PointAccount

T0 = datetime(2026, 1, 1, tzinfo=UTC)

earn = st.tuples(st.just("earn"), st.integers(1, 500), st.integers(1, 60))
hold = st.tuples(st.just("hold"), st.integers(1, 500), st.integers(1, 60))
spend = st.tuples(st.just("spend"), st.integers(1, 800), st.just(0))
reverse = st.tuples(st.just("reverse"), st.integers(1, 800), st.just(0))
unhold = st.tuples(st.just("unhold"), st.integers(1, 500), st.just(0))
restore = st.tuples(st.just("restore"), st.just(0), st.just(0))
tick = st.tuples(st.just("tick"), st.integers(1, 30), st.just(0))
operations = st.lists(st.one_of(earn, hold, spend, reverse, unhold, restore, tick), max_size=60)


class Run:
    def __init__(self) -> None:
        self.account = PointAccount(customer_id="cus_x")
        self.entries: list[ledger.Entry] = []
        self.now = T0
        self.n = 0
        self.spends: list[ledger.Entry] = []

    def cause(self) -> Cause:
        self.n += 1
        return Cause(source=f"op:{self.n}", at=self.now)

    def post(self, posted: ledger.Posted) -> None:
        self.account = posted.account
        self.entries.extend(posted.entries)

    def apply(self, op: str, points: int, days: int) -> None:
        if op == "earn":
            expires = self.now + timedelta(days=days)
            self.post(ledger.credit(self.account, points, self.cause(), expires_at=expires))
        elif op == "hold":
            at = self.now + timedelta(days=days)
            posted = ledger.hold(
                self.account, points, self.cause(), available_at=at, expires_at=at + timedelta(30)
            )
            self.post(posted)
        elif op == "spend":
            try:
                posted = ledger.debit(self.account, points, self.cause(), kind=EntryKind.SPENT)
            except InsufficientPoints:
                assert points > self.account.balance
                return
            self.check_fefo(posted.entries[0])
            self.spends.append(posted.entries[0])
            self.post(posted)
        elif op == "reverse":
            posted = ledger.debit(
                self.account, points, self.cause(), kind=EntryKind.REVERSED, allow_debt=True
            )
            self.post(posted)
        elif op == "unhold" and self.account.pending:
            source = self.account.pending[0].source
            self.post(ledger.release_held(self.account, source, points, self.cause()))
        elif op == "restore" and self.spends:
            self.post(ledger.restore(self.account, self.spends.pop(), self.cause()))
        elif op == "tick":
            self.now += timedelta(days=points)
            posted, _ = ledger.mature(self.account, self.now, remind_ahead=7)
            self.post(posted)

    def check_fefo(self, spent: ledger.Entry) -> None:
        """No lot outside the spend expires before one the spend took from but left."""
        touched = {m.lot_id for m in spent.lots}
        taken_last = max((m.expires_at for m in spent.lots), default=None)
        for lot in self.account.lots:
            if lot.lot_id not in touched and taken_last is not None:
                assert lot.expires_at >= taken_last or lot.remaining == 0

    def check(self) -> None:
        account = self.account
        assert account.balance == sum(e.points for e in self.entries)
        assert account.pending_points == sum(e.pending for e in self.entries)
        assert account.debt == sum(e.debt for e in self.entries)
        assert all(lot.remaining > 0 for lot in account.lots)
        assert all(p.points > 0 for p in account.pending)
        assert not (account.debt and account.lots), "debt with spendable lots"
        assert account.lots == sorted(
            account.lots, key=lambda lot: (lot.expires_at, lot.earned_at, lot.lot_id)
        )
        if self.entries:
            assert self.entries[-1].balance_after == account.balance
        assert len({e.source for e in self.entries}) == len(self.entries)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_the_balance_always_equals_the_sum_of_the_entries(ops: list) -> None:
    run = Run()
    for op in ops:
        run.apply(*op)
        run.check()


@settings(max_examples=200, deadline=None)
@given(operations)
def test_after_maturing_no_lot_is_past_its_expiry_or_hold(ops: list) -> None:
    run = Run()
    for op in ops:
        run.apply(*op)
    run.apply("tick", 1, 0)
    assert all(lot.expires_at > run.now for lot in run.account.lots)
    assert all(p.available_at > run.now for p in run.account.pending)


def test_a_spend_takes_the_first_expiring_lot_first() -> None:
    run = Run()
    run.apply("earn", 100, 50)
    run.apply("earn", 100, 10)
    run.apply("earn", 100, 30)
    run.apply("spend", 150, 0)
    left = [(lot.expires_at - T0).days for lot in run.account.lots]
    assert left == [30, 50]
    assert [lot.remaining for lot in run.account.lots] == [50, 100]


def test_a_reversal_beyond_the_balance_leaves_debt_that_the_next_earning_pays() -> None:
    run = Run()
    run.apply("earn", 100, 50)
    run.apply("reverse", 130, 0)
    assert run.account.balance == -30 and run.account.debt == 30 and not run.account.lots
    run.apply("earn", 50, 50)
    assert run.account.debt == 0 and run.account.balance == 20
    assert [lot.remaining for lot in run.account.lots] == [20]
    run.check()


def test_reminders_come_once_per_lot_grouped_by_expiry_and_held_points_release_on_time() -> None:
    run = Run()
    run.apply("earn", 100, 20)
    run.apply("earn", 50, 20)
    run.apply("earn", 70, 40)
    run.apply("hold", 30, 5)
    posted, notices = ledger.mature(run.account, T0 + timedelta(days=14), remind_ahead=7)
    assert [(n.points, (n.expires_at - T0).days) for n in notices] == [(150, 20)]
    assert [e.kind for e in posted.entries] == [EntryKind.RELEASED]
    assert posted.account.balance == 250 and posted.account.pending_points == 0
    again, repeat = ledger.mature(posted.account, T0 + timedelta(days=15), remind_ahead=7)
    assert repeat == [] and again.entries == []
    assert posted.account.next_due_at(7) == T0 + timedelta(days=20)


@settings(max_examples=200, deadline=None)
@given(operations, operations, operations)
def test_a_merge_and_an_unmerge_keep_both_ledgers_equal_to_their_balances(
    survivor_ops: list, duplicate_ops: list, between: list
) -> None:
    survivor, duplicate = Run(), Run()
    duplicate.account = PointAccount(customer_id="cus_dup")
    duplicate.n = 10_000  # distinct sources
    for op in survivor_ops:
        survivor.apply(*op)
    for op in duplicate_ops:
        duplicate.apply(*op)
    total = survivor.account.balance + duplicate.account.balance
    held = survivor.account.pending_points + duplicate.account.pending_points
    moved_lots = {x.lot_id for x in duplicate.account.lots}
    moved_pending = {p.lot_id for p in duplicate.account.pending}
    out, into = merging.merge(duplicate.account, survivor.account, Cause("merge:m1", T0))
    duplicate.post(out)
    survivor.post(into)
    for run in (survivor, duplicate):
        run.check()
    assert duplicate.account.balance == 0 and not duplicate.account.pending
    assert survivor.account.balance == total and survivor.account.pending_points == held

    survivor.spends = []
    for op in between:
        survivor.apply(*op)
    back_out, back_in = merging.unmerge(
        survivor.account, duplicate.account, moved_lots, moved_pending, Cause("unmerge:m1", T0)
    )
    survivor.post(back_out)
    duplicate.post(back_in)
    for run in (survivor, duplicate):
        run.check()
    assert not {x.lot_id for x in survivor.account.lots} & moved_lots

"""The contact-pressure decision: consent, quiet hours in the tenant's zone, caps, the WeCom
monthly mass-message limit, merged-away customers, and the slots a send takes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reach.domain.channels import Channel, Purpose, Recipient
from services.reach.domain.pressure import (
    Ask,
    Cap,
    Counts,
    Defer,
    Policy,
    Send,
    Slots,
    Suppress,
    decide,
    per_person,
    quiet_hours_end,
    windows,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI).astimezone(UTC)
MARKETING_SMS = Ask(Channel.SMS, Purpose.MARKETING)
POLICY = Policy(caps={Channel.SMS: Cap(per_day=2, per_week=3)})


def test_no_consent_suppresses_whatever_the_purpose() -> None:
    for purpose in Purpose:
        decision = decide(
            Ask(Channel.SMS, purpose), POLICY, consented=False, counts=Counts(), now=NOON
        )
        assert decision == Suppress(f"no_consent:sms:{purpose}")


def test_a_merged_away_customer_is_not_contacted_for_any_purpose_even_with_consent() -> None:
    for purpose in Purpose:
        ask = Ask(Channel.SMS, purpose)
        decision = decide(ask, POLICY, consented=True, counts=Counts(), now=NOON, merged=True)
        assert decision == Suppress("merged")


def test_an_advisor_is_told_without_consent_or_caps() -> None:
    ask = Ask(Channel.WECHAT, Purpose.SERVICE, Recipient.ADVISOR)
    assert decide(ask, POLICY, consented=False, counts=Counts(day=99), now=NOON) == Send(slots=None)


def test_a_first_marketing_send_takes_the_first_slots_of_the_local_day_and_week() -> None:
    decision = decide(MARKETING_SMS, POLICY, consented=True, counts=Counts(), now=NOON)
    assert decision == Send(Slots(day="2026-11-23#1", week="2026-W48#1"))


def test_caps_per_day_then_per_week() -> None:
    assert decide(
        MARKETING_SMS, POLICY, consented=True, counts=Counts(day=2, week=2), now=NOON
    ) == Suppress("frequency_cap_day")
    assert decide(
        MARKETING_SMS, POLICY, consented=True, counts=Counts(day=1, week=3), now=NOON
    ) == Suppress("frequency_cap_week")
    assert decide(
        MARKETING_SMS, POLICY, consented=True, counts=Counts(day=1, week=2), now=NOON
    ) == Send(Slots(day="2026-11-23#2", week="2026-W48#3"))


def test_service_messages_ignore_caps_and_quiet_hours() -> None:
    night = datetime(2026, 11, 23, 23, 30, tzinfo=SHANGHAI)
    ask = Ask(Channel.SMS, Purpose.SERVICE)
    assert decide(ask, POLICY, consented=True, counts=Counts(day=9, week=9), now=night) == Send(
        slots=None
    )


def test_marketing_in_quiet_hours_waits_for_the_morning_in_the_tenants_zone() -> None:
    night = datetime(2026, 11, 23, 23, 30, tzinfo=SHANGHAI).astimezone(UTC)
    decision = decide(MARKETING_SMS, POLICY, consented=True, counts=Counts(), now=night)
    assert decision == Defer(
        until=datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI), reason="quiet_hours"
    )
    early = datetime(2026, 11, 24, 7, 0, tzinfo=SHANGHAI)
    assert quiet_hours_end(POLICY, early) == datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)


def test_the_same_utc_instant_is_quiet_in_one_zone_and_not_another() -> None:
    instant = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 22:00 Shanghai, 09:00 New York
    assert quiet_hours_end(Policy(time_zone="Asia/Shanghai"), instant) is not None
    assert quiet_hours_end(Policy(time_zone="America/New_York"), instant) is None


def test_wecom_mass_messages_are_limited_per_month() -> None:
    ask = Ask(Channel.WECHAT, Purpose.MARKETING, mass=True)
    policy = Policy(caps={Channel.WECHAT: Cap(per_day=5, per_week=20)}, wecom_monthly_mass=4)
    assert decide(ask, policy, consented=True, counts=Counts(month_mass=4), now=NOON) == Suppress(
        "wecom_monthly_mass_limit"
    )
    sent = decide(ask, policy, consented=True, counts=Counts(month_mass=3), now=NOON)
    assert isinstance(sent, Send) and sent.slots is not None and sent.slots.month == "2026-11#4"
    single = decide(
        Ask(Channel.WECHAT, Purpose.MARKETING),
        policy,
        consented=True,
        counts=Counts(month_mass=4),
        now=NOON,
    )
    assert isinstance(single, Send) and single.slots is not None and single.slots.month is None


def test_windows_follow_the_tenants_calendar() -> None:
    # 2026-11-29 is a Sunday: 23:30 there is still week 48, 00:30 Monday is week 49.
    sunday_night = datetime(2026, 11, 29, 23, 30, tzinfo=SHANGHAI)
    assert windows(POLICY, sunday_night).week == "2026-W48"
    assert windows(POLICY, sunday_night + timedelta(hours=1)).week == "2026-W49"
    assert windows(POLICY, sunday_night + timedelta(hours=1)).day == "2026-11-30"


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        Policy(time_zone="Mars/Olympus")


@given(
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
)
def test_a_deferral_always_lands_outside_quiet_hours_and_within_a_day(
    start: time, end: time, at: datetime
) -> None:
    policy = Policy(quiet_start=start, quiet_end=end)
    now = at.replace(tzinfo=UTC)
    until = quiet_hours_end(policy, now)
    if until is None:
        return
    assert now < until <= now + timedelta(days=1)
    assert quiet_hours_end(policy, until) is None


def test_a_persons_counts_add_those_of_the_customers_merged_into_them() -> None:
    counts = {"survivor": Counts(day=1, week=2), "duplicate": Counts(day=1, week=1, month_mass=1)}
    merged = {"survivor": ["duplicate"], "fresh": ["old"]}
    assert per_person(counts, merged) == {
        "survivor": Counts(day=2, week=3, month_mass=1),
        "duplicate": Counts(day=1, week=1, month_mass=1),
        "fresh": Counts(),
    }

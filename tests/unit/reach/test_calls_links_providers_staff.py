"""Pure rules added for issue 8's last parts: tracked-link MACs, call outcomes as receipts,
which provider may carry which channel (and what of it is secret), and staff notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from services.reach.domain import links, provider_configs, staff
from services.reach.domain.call_tasks import (
    CallOutcome,
    OutcomeReport,
    Receipt,
    problem,
    receipt,
)
from services.reach.domain.channels import Channel
from services.reach.domain.messages import message_id

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
KEY = b"k" * 32
CONFIG = TypeAdapter(provider_configs.ProviderConfig)


@given(st.text(min_size=1, max_size=40))
def test_a_link_opens_to_its_message_and_only_with_the_key(key: str) -> None:
    mid = message_id("t1", key)
    link = links.link_id(KEY, mid)
    assert links.message_of(KEY, link) == mid
    assert links.message_of(b"x" * 32, link) is None
    assert links.message_of(KEY, mid) is None  # the bare id is not a link
    assert links.message_of(KEY, link[:-1] + ("A" if link[-1] != "A" else "B")) is None
    assert links.message_of(KEY, message_id("t1", key + "x") + link[len(mid) :]) is None


def test_call_outcomes_become_receipts() -> None:
    assert receipt(CallOutcome.ANSWERED) == Receipt(delivered=True)
    assert receipt(CallOutcome.NO_ANSWER) == Receipt(delivered=False, reason="call_no_answer")
    assert receipt(CallOutcome.REFUSED) == Receipt(delivered=False, reason="call_refused")
    assert receipt(CallOutcome.CALLBACK) is None


def test_a_callback_needs_a_time_ahead_within_30_days() -> None:
    def report(outcome: CallOutcome, at: datetime | None) -> str | None:
        return problem(OutcomeReport(outcome=outcome, callback_at=at), NOW)

    assert report(CallOutcome.CALLBACK, NOW + timedelta(hours=2)) is None
    assert report(CallOutcome.CALLBACK, None)
    assert report(CallOutcome.CALLBACK, NOW - timedelta(minutes=1))
    assert report(CallOutcome.CALLBACK, NOW + timedelta(days=31))
    assert report(CallOutcome.CALLBACK, datetime(2026, 11, 25, 10, 0))  # no zone
    assert report(CallOutcome.ANSWERED, NOW + timedelta(hours=2))
    assert report(CallOutcome.ANSWERED, None) is None


def test_providers_carry_their_channels_and_secrets_are_split_and_masked() -> None:
    assert provider_configs.refusal(Channel.EMAIL, "smtp") is None
    assert provider_configs.refusal(Channel.SMS, "smtp")
    assert provider_configs.refusal(Channel.CALL, "aliyun_sms")
    assert provider_configs.refusal(Channel.CALL, "call_task") is None
    assert provider_configs.refusal(Channel.PUSH, "webhook") is None
    smtp = CONFIG.validate_python(
        {
            "provider": "smtp",
            "host": "mail.brand.example",
            "sender": "a@brand.example",
            "password": "p" * 14,
        }
    )
    plain, secret = provider_configs.split(smtp)
    assert "password" not in plain and secret == {"password": "p" * 14}
    assert provider_configs.mask("p" * 14) == "****pp" and provider_configs.mask("short") == "****"
    with pytest.raises(ValidationError):
        CONFIG.validate_python(
            {"provider": "webhook", "url": "https://x.example", "secret": "short"}
        )
    with pytest.raises(ValidationError):
        CONFIG.validate_python({"provider": "smtp", "host": "bad host", "sender": "a@b.example"})


def test_a_staff_notice_is_one_per_alert_and_contact() -> None:
    lead = staff.Contact(kind=staff.ContactKind.EMAIL, address="lead@brand.example")
    robot = staff.Contact(kind=staff.ContactKind.WEBHOOK, address="https://hook.example/x")
    assert staff.notice_id("t1", "alr_1", lead) == staff.notice_id("t1", "alr_1", lead)
    ids = {
        staff.notice_id(t, a, c)
        for t in ("t1", "t2")
        for a in ("alr_1", "alr_2")
        for c in (lead, robot)
    }
    assert len(ids) == 8
    with pytest.raises(ValidationError):
        staff.Contact(kind=staff.ContactKind.MOBILE, address="lead@brand.example")
    alert = staff.Alert(
        alert_id="alr_1",
        kind="stock",
        severity="warning",
        title="库存告急",
        detail="批次 b1 剩余 3%",
        subject_kind="batch",
        subject_id="b1",
        measures={"left_percent": 3.0},
    )
    said = staff.content(alert)
    assert said["subject"] == "[预警/warning] 库存告急"
    assert said["body"] == "[warning] 库存告急: 批次 b1 剩余 3% (left_percent=3)"

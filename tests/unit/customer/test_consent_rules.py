"""The consent rules, without I/O: opt-in by default, every change a new version, a repeat
of the current state records nothing, and history times never run backwards."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.customer.domain import consent as rules
from services.customer.domain.consent import Channel, Consent, ConsentState, Purpose

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def request(**overrides: Any) -> rules.ConsentRequest:
    fields: dict[str, Any] = {
        "tenant": "acme",
        "customer_id": "cus_1",
        "channel": Channel.SMS,
        "purpose": Purpose.MARKETING,
        "granted": True,
        "source": "mini_program_popup",
        "recorded_by": "advisor-7",
        "at": T0,
    }
    return rules.ConsentRequest(**{**fields, **overrides})


def recorded(**overrides: Any) -> Consent:
    consent = rules.record(None, request(**overrides))
    assert consent is not None
    return consent


def test_nothing_recorded_is_not_allowed() -> None:
    assert rules.is_allowed(None) is False


def test_a_first_grant_is_version_one_and_allowed() -> None:
    consent = recorded()
    assert consent.state is ConsentState.GRANTED
    assert consent.version == 1
    assert rules.is_allowed(consent)
    assert (consent.source, consent.recorded_by, consent.changed_at) == (
        "mini_program_popup",
        "advisor-7",
        T0,
    )


def test_a_first_refusal_is_recorded_and_not_allowed() -> None:
    consent = recorded(granted=False, source="store_form")
    assert consent.state is ConsentState.WITHDRAWN
    assert consent.version == 1
    assert not rules.is_allowed(consent)


def test_withdrawing_a_grant_is_the_next_version() -> None:
    granted = recorded()
    withdrawn = rules.record(
        granted, request(granted=False, source="sms_reply", at=T0 + timedelta(hours=1))
    )
    assert withdrawn is not None
    assert withdrawn.state is ConsentState.WITHDRAWN
    assert withdrawn.version == 2
    assert withdrawn.source == "sms_reply"
    assert not rules.is_allowed(withdrawn)


@pytest.mark.parametrize("granted", [True, False])
def test_repeating_the_current_state_changes_nothing(granted: bool) -> None:
    current = recorded(granted=granted)
    assert rules.record(current, request(granted=granted, source="api")) is None


def test_a_grant_after_a_withdrawal_is_allowed_again() -> None:
    withdrawn = recorded(granted=False)
    regranted = rules.record(withdrawn, request(granted=True, at=T0 + timedelta(days=1)))
    assert regranted is not None and regranted.version == 2 and regranted.allowed


def test_a_change_is_never_dated_before_the_one_it_follows() -> None:
    granted = recorded(at=T0)
    # Another replica's clock runs a second behind.
    withdrawn = rules.record(granted, request(granted=False, at=T0 - timedelta(seconds=1)))
    assert withdrawn is not None and withdrawn.changed_at == T0


def test_the_last_change_mirrors_the_current_state() -> None:
    consent = recorded()
    change = consent.last_change()
    assert (change.version, change.state, change.source, change.changed_at) == (
        1,
        ConsentState.GRANTED,
        consent.source,
        consent.changed_at,
    )


def test_every_channel_and_purpose_is_listed_once() -> None:
    pairs = rules.every_pair()
    assert len(pairs) == len(set(pairs)) == len(Channel) * len(Purpose) == 18
    assert pairs[0] == (Channel.SMS, Purpose.MARKETING)


@pytest.mark.parametrize("source", ["mini_program_popup", "store_form", "import", "api"])
def test_the_usual_sources_are_slugs(source: str) -> None:
    assert re.fullmatch(rules.SOURCE_PATTERN, source)


@pytest.mark.parametrize("source", ["", "Store Form", "$ne", "a" * 41, "1popup"])
def test_other_sources_are_refused(source: str) -> None:
    assert not re.fullmatch(rules.SOURCE_PATTERN, source)

"""Consent over real HTTP on the real embedded store and broker: opt-in by default, grant
and withdrawal take effect at once and are published, a repeat changes nothing, bad input
writes nothing, and concurrent opposite updates end in one state that the history and the
published events agree on."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from itertools import pairwise
from typing import Any

import httpx
import pytest

from contracts import Envelope
from contracts.customer import ConsentGranted, ConsentWithdrawn
from servicekit.errors import PROBLEM_JSON
from servicekit.outbox import outbox_events
from tests.customer.support import ADVISOR, Service
from tests.support.events import published
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
GRANTED = ConsentGranted.type
WITHDRAWN = ConsentWithdrawn.type


@pytest.fixture
def actor() -> dict[str, str]:
    return ADVISOR


async def register(api: httpx.AsyncClient) -> str:
    body = {"display_name": "Han Meimei", "source_channel": "mini_program"}
    response = await api.post("/customers", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture
async def customer_id(api: httpx.AsyncClient) -> str:
    return await register(api)


async def put_consent(
    api: httpx.AsyncClient,
    customer_id: str,
    *,
    granted: bool,
    channel: str = "sms",
    purpose: str = "marketing",
    source: str = "mini_program_popup",
) -> dict[str, Any]:
    response = await api.put(
        f"/customers/{customer_id}/consents/{channel}/{purpose}",
        json={"granted": granted, "source": source},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def check(
    api: httpx.AsyncClient, customer_id: str, channel: str = "sms", purpose: str = "marketing"
) -> dict[str, Any]:
    response = await api.get(f"/customers/{customer_id}/consents/{channel}/{purpose}")
    assert response.status_code == 200, response.text
    return response.json()


async def consents(api: httpx.AsyncClient, customer_id: str, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/customers/{customer_id}/consents", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def one(picture: dict[str, Any], channel: str = "sms", purpose: str = "marketing") -> dict:
    [found] = [c for c in picture["consents"] if (c["channel"], c["purpose"]) == (channel, purpose)]
    return found


async def consent_events(
    service: Service, tenant: str, *, count: int, customer_id: str
) -> list[Envelope]:
    """The consent events of the customer, in published order, once `count` arrived."""

    async def probe() -> list[Envelope]:
        events = await published(service.settings.kafka_bootstrap_servers, tenant=tenant)
        return [e for e in events if e.type in (GRANTED, WITHDRAWN) and e.subject == customer_id]

    return await eventually(probe, until=lambda events: len(events) >= count, within=60)


async def consent_events_written(service: Service, tenant: str) -> int:
    """Consent events in the outbox: what will be published, counted where it is written."""
    events = await outbox_events(service.db, tenant=tenant)
    return sum(1 for e in events if e["type"] in {GRANTED, WITHDRAWN})


async def stored_consents(service: Service, tenant: str) -> int:
    query = {"tenant": tenant}
    return await service.db["consents"].count_documents(query) + await service.db[
        "consent_history"
    ].count_documents(query)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    return response.json()


# --------------------------------------------------------------------------- defaults


async def test_nothing_recorded_is_not_allowed(api: httpx.AsyncClient, customer_id: str) -> None:
    picture = await consents(api, customer_id)
    assert picture["customer_id"] == customer_id
    assert len(picture["consents"]) == 6 * 3
    for consent in picture["consents"]:
        assert consent["state"] is None and consent["allowed"] is False
        assert consent["version"] == 0 and consent["history"] is None

    answer = await check(api, customer_id, "wechat", "service")
    assert answer["allowed"] is False and answer["reason"] == "never_recorded"


# --------------------------------------------------------------------------- grant and withdraw


async def test_grant_and_withdrawal_take_effect_at_once_and_are_published(
    api: httpx.AsyncClient, service: Service, tenant: str, customer_id: str
) -> None:
    granted = await put_consent(api, customer_id, granted=True)
    assert granted["changed"] is True
    assert (granted["state"], granted["allowed"], granted["version"]) == ("granted", True, 1)
    assert granted["source"] == "mini_program_popup" and granted["recorded_by"] == "advisor-7"
    assert (await check(api, customer_id))["allowed"] is True

    withdrawn = await put_consent(api, customer_id, granted=False, source="sms_reply")
    assert withdrawn["changed"] is True
    assert (withdrawn["state"], withdrawn["allowed"], withdrawn["version"]) == (
        "withdrawn",
        False,
        2,
    )
    answer = await check(api, customer_id)
    assert (answer["allowed"], answer["reason"]) == (False, "withdrawn")
    # Other channels and purposes are untouched.
    assert (await check(api, customer_id, "sms", "service"))["allowed"] is False

    history = one(await consents(api, customer_id, history="true"))["history"]
    assert [(h["version"], h["state"], h["source"]) for h in history] == [
        (1, "granted", "mini_program_popup"),
        (2, "withdrawn", "sms_reply"),
    ]
    assert all(h["recorded_by"] == "advisor-7" for h in history)
    first_at, last_at = (datetime.fromisoformat(h["changed_at"]) for h in history)
    assert first_at <= last_at == datetime.fromisoformat(withdrawn["changed_at"])

    events = await consent_events(service, tenant, count=2, customer_id=customer_id)
    assert [e.type for e in events] == [GRANTED, WITHDRAWN]
    assert events[0].data == {
        "customer_id": customer_id,
        "channel": "sms",
        "purpose": "marketing",
        "source": "mini_program_popup",
        "granted_at": events[0].data["granted_at"],
    }
    assert events[1].data["source"] == "sms_reply"


async def test_history_is_only_given_on_request_and_empty_where_nothing_happened(
    api: httpx.AsyncClient, customer_id: str
) -> None:
    await put_consent(api, customer_id, granted=True, channel="email", purpose="service")
    plain = await consents(api, customer_id)
    assert all(c["history"] is None for c in plain["consents"])
    full = await consents(api, customer_id, history="true")
    assert len(one(full, "email", "service")["history"]) == 1
    assert one(full, "push", "marketing")["history"] == []


async def test_withdrawing_a_withdrawn_consent_changes_nothing_and_publishes_nothing(
    api: httpx.AsyncClient, service: Service, tenant: str, customer_id: str
) -> None:
    first = await put_consent(api, customer_id, granted=False, source="store_form")
    assert first["changed"] is True  # an explicit refusal is recorded once
    assert (first["state"], first["version"]) == ("withdrawn", 1)
    again = await put_consent(api, customer_id, granted=False, source="api")
    assert again["changed"] is False
    assert (again["state"], again["version"], again["source"]) == ("withdrawn", 1, "store_form")

    await put_consent(api, customer_id, granted=True, channel="call")
    repeat = await put_consent(api, customer_id, granted=True, channel="call")
    assert repeat["changed"] is False and repeat["version"] == 1

    assert await consent_events_written(service, tenant) == 2
    events = await consent_events(service, tenant, count=2, customer_id=customer_id)
    assert [(e.type, e.data["channel"]) for e in events] == [(WITHDRAWN, "sms"), (GRANTED, "call")]


# --------------------------------------------------------------------------- bad input


def consent_body(**overrides: Any) -> dict[str, Any]:
    return {"granted": True, "source": "api", **overrides}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("fax/marketing", consent_body(), "channel"),
        ("sms/spam", consent_body(), "purpose"),
        ("SMS/marketing", consent_body(), "channel"),
        ("sms/marketing", consent_body(granted={"$ne": None}), "granted"),
        ("sms/marketing", consent_body(source={"$ne": None}), "source"),
        ("sms/marketing", consent_body(granted="true"), "granted"),
        ("sms/marketing", consent_body(granted=1), "granted"),
        ("sms/marketing", consent_body(source="Store Form"), "source"),
        ("sms/marketing", consent_body(source=""), "source"),
        ("sms/marketing", consent_body(tenant="other"), "tenant"),
        ("sms/marketing", {"granted": True}, "source"),
    ],
    ids=[
        "unknown-channel",
        "unknown-purpose",
        "upper-case-channel",
        "operator-granted",
        "operator-source",
        "string-granted",
        "number-granted",
        "source-not-a-slug",
        "empty-source",
        "extra-field",
        "missing-source",
    ],
)
async def test_bad_input_is_a_problem_naming_the_field_and_writes_nothing(
    api: httpx.AsyncClient,
    service: Service,
    tenant: str,
    customer_id: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    response = await api.put(f"/customers/{customer_id}/consents/{path}", json=body)
    problem = assert_problem(response, 422)
    assert field in {e["field"] for e in problem["errors"]}
    assert await stored_consents(service, tenant) == 0
    assert await consent_events_written(service, tenant) == 0


@pytest.mark.parametrize("path", ["consents/fax/marketing", "consents/sms/nothing"])
async def test_a_check_of_an_unknown_channel_or_purpose_is_a_problem(
    api: httpx.AsyncClient, customer_id: str, path: str
) -> None:
    response = await api.get(f"/customers/{customer_id}/{path}")
    assert assert_problem(response, 422)["errors"][0]["field"] in {"channel", "purpose"}


async def test_an_unknown_customer_is_a_404_and_nothing_is_written(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    unknown = f"cus_{uuid.uuid4().hex}"
    for response in (
        await api.put(f"/customers/{unknown}/consents/sms/marketing", json=consent_body()),
        await api.get(f"/customers/{unknown}/consents"),
        await api.get(f"/customers/{unknown}/consents/sms/marketing"),
    ):
        assert assert_problem(response, 404)["code"] == "customer_not_found"
    assert await stored_consents(service, tenant) == 0
    assert await consent_events_written(service, tenant) == 0


async def test_another_tenants_customer_is_unknown(
    api: httpx.AsyncClient, service: Service, customer_id: str, unique: str
) -> None:
    headers = {"X-Tenant-Id": f"other{unique}"}
    response = await api.put(
        f"/customers/{customer_id}/consents/sms/marketing", json=consent_body(), headers=headers
    )
    assert assert_problem(response, 404)["code"] == "customer_not_found"
    assert (await check(api, customer_id))["allowed"] is False


async def test_a_malformed_customer_id_is_a_problem(api: httpx.AsyncClient) -> None:
    response = await api.get("/customers/cus$ne/consents")
    assert assert_problem(response, 422)["errors"][0]["field"] == "customer_id"


# --------------------------------------------------------------------------- concurrency


async def test_concurrent_opposite_updates_end_in_one_state_history_and_events_agree_on(
    api: httpx.AsyncClient, service: Service, tenant: str, customer_id: str
) -> None:
    answers = await asyncio.gather(
        *(put_consent(api, customer_id, granted=i % 2 == 0, source=f"form_{i}") for i in range(20))
    )
    changes = [a for a in answers if a["changed"]]

    consent = one(await consents(api, customer_id, history="true"))
    history = consent["history"]
    assert len(history) == len(changes) >= 1
    assert [h["version"] for h in history] == list(range(1, len(history) + 1))
    # No change repeats the state before it: every entry flips the consent.
    states = [h["state"] for h in history]
    assert all(a != b for a, b in pairwise(states))
    times = [datetime.fromisoformat(h["changed_at"]) for h in history]
    assert times == sorted(times)
    last = history[-1]
    assert (consent["state"], consent["version"], consent["source"]) == (
        last["state"],
        last["version"],
        last["source"],
    )
    assert (await check(api, customer_id))["allowed"] is (last["state"] == "granted")
    # Each answer that changed the consent names a distinct version of the history.
    assert sorted(a["version"] for a in changes) == [h["version"] for h in history]

    events = await consent_events(service, tenant, count=len(history), customer_id=customer_id)
    assert len(events) == len(history)
    expected = [(GRANTED if h["state"] == "granted" else WITHDRAWN, h["source"]) for h in history]
    assert [(e.type, e.data["source"]) for e in events] == expected
    event_times = [e.data.get("granted_at") or e.data.get("withdrawn_at") for e in events]
    assert [datetime.fromisoformat(t) for t in event_times] == times

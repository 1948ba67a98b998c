"""Reach with the real customer service: consent recorded there reaches reach by its events,
an email goes to the address the customer service holds (asked for over HTTP with the right
to see it, never copied from events) through SMTP to a local server, and an unsubscribe in
reach stops marketing at once and is recorded by the customer service too."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from services.customer.main import create_app as create_customer
from services.customer.settings import CustomerSettings
from services.reach.store.audience import CONSENTS, FORWARDS
from tests.reach.peers import Inbox, smtp_peer
from tests.reach.support import Service, policy, send, template
from tests.support.running import RunningService
from tests.support.servers import free_port, serve
from tests.support.settings import settings_for
from tests.support.waiting import eventually

Customer = RunningService[CustomerSettings]
EMAIL = {"subject": "{{customer_name}}, 会员日", "body": "专属{{coupon_amount}}元券"}


@pytest.fixture(scope="module")
async def customer_service(infra: Any) -> AsyncIterator[Customer]:
    settings = settings_for(CustomerSettings, infra, uuid.uuid4().hex[:10])
    app = create_customer(settings)
    async with serve(app) as url:
        yield Customer(url, app, settings)


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[Inbox, int]]:
    box, port = Inbox(), free_port()
    controller = smtp_peer(box, port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def overrides(customer_service: Customer, inbox: tuple[Inbox, int]) -> dict[str, Any]:
    return {
        "customer_base_url": customer_service.url,
        "smtp_host": "127.0.0.1",
        "smtp_port": inbox[1],
        "smtp_sender": "vip@brand.example",
        "channel_providers": {"email": "smtp"},
        "consumer_groups": {"reach.customer"},
    }


async def test_email_to_the_customer_services_address_and_unsubscribe_recorded_there(
    service: Service,
    customer_service: Customer,
    tenant: str,
    api: httpx.AsyncClient,
    inbox: tuple[Inbox, int],
) -> None:
    box, _ = inbox
    await policy(api, caps={"email": {"per_day": 5, "per_week": 5}})
    await template(api, "vip", "email", **EMAIL)
    headers = {"X-Tenant-Id": tenant, "X-Actor-Id": "ops-1"}
    async with httpx.AsyncClient(base_url=customer_service.url, headers=headers, timeout=30) as crm:
        created = await crm.post(
            "/customers",
            json={"display_name": "林小姐", "source_channel": "store", "email": "lin@example.com"},
        )
        assert created.status_code == 201, created.text
        lin = created.json()["id"]
        granted = await crm.put(
            f"/customers/{lin}/consents/email/marketing",
            json={"granted": True, "source": "store_form"},
        )
        assert granted.status_code == 200, granted.text

        await eventually(
            lambda: service.db[CONSENTS].find_one(
                {"tenant": tenant, "customer_id": lin, "granted": True}
            ),
            until=lambda doc: doc is not None,
            within=60,
        )
        sent = await send(api, lin, channel="email", template_id="vip", coupon_amount="50")

        assert sent["status"] == "sent" and sent["provider"] == "smtp"
        [mail] = [m for m in box.messages if m["X-Reach-Message-Id"] == sent["message_id"]]
        assert mail["To"] == "lin@example.com" and mail["Subject"] == "林小姐, 会员日"

        response = await api.post(f"/customers/{lin}/unsubscribe", json={"channel": "email"})
        assert response.status_code == 202
        after = await send(api, lin, channel="email", template_id="vip")
        assert after["status"] == "suppressed"

        async def recorded_there() -> dict[str, Any]:
            return (await crm.get(f"/customers/{lin}/consents/email/marketing")).json()

        await eventually(recorded_there, until=lambda c: c.get("reason") == "withdrawn", within=30)
        # The forward is deleted once the customer service has answered, so just after.
        await eventually(
            lambda: service.db[FORWARDS].count_documents({"tenant": tenant}),
            until=lambda pending: pending == 0,
            within=30,
        )


async def test_a_customer_without_an_address_fails_with_the_reason(
    service: Service,
    customer_service: Customer,
    tenant: str,
    api: httpx.AsyncClient,
) -> None:
    await policy(api, caps={"email": {"per_day": 5, "per_week": 5}})
    await template(api, "vip", "email", **EMAIL)
    headers = {"X-Tenant-Id": tenant}
    async with httpx.AsyncClient(base_url=customer_service.url, headers=headers, timeout=30) as crm:
        created = await crm.post(
            "/customers", json={"display_name": "王先生", "source_channel": "store"}
        )
        wang = created.json()["id"]
        await crm.put(
            f"/customers/{wang}/consents/email/marketing",
            json={"granted": True, "source": "store_form"},
        )
    await eventually(
        lambda: service.db[CONSENTS].find_one(
            {"tenant": tenant, "customer_id": wang, "granted": True}
        ),
        until=lambda doc: doc is not None,
        within=60,
    )
    sent = await send(api, wang, channel="email", template_id="vip")
    assert sent["status"] == "failed" and sent["reason"] == "no_email"


async def test_only_the_agent_holding_a_call_task_sees_the_number_to_call(
    service: Service, customer_service: Customer, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"call": {"per_day": 5, "per_week": 5}})
    await template(api, "call_script", "call", body="{{customer_name}}您好, 会员日邀约")
    headers = {"X-Tenant-Id": tenant}
    async with httpx.AsyncClient(base_url=customer_service.url, headers=headers, timeout=30) as crm:
        created = await crm.post(
            "/customers",
            json={"display_name": "赵女士", "source_channel": "store", "mobile": "13800138000"},
        )
        zhao = created.json()["id"]
        await crm.put(
            f"/customers/{zhao}/consents/call/marketing", json={"granted": True, "source": "form"}
        )
    await eventually(
        lambda: service.db[CONSENTS].find_one(
            {"tenant": tenant, "customer_id": zhao, "channel": "call", "granted": True}
        ),
        until=lambda doc: doc is not None,
        within=60,
    )
    task_id = (await send(api, zhao, channel="call", template_id="call_script"))["message_id"]
    number = f"/call-tasks/{task_id}/number"
    assert (await api.get(number, headers={"X-Actor-Id": "agent-1"})).status_code == 409
    claimed = await api.post(f"/call-tasks/{task_id}/claim", headers={"X-Actor-Id": "agent-1"})
    assert claimed.status_code == 200
    assert "mobile" not in claimed.json()  # the list never carries it

    assert (await api.get(number, headers={"X-Actor-Id": "agent-2"})).status_code == 409
    shown = await api.get(number, headers={"X-Actor-Id": "agent-1"})
    assert shown.status_code == 200 and shown.json() == {"mobile": "+8613800138000"}

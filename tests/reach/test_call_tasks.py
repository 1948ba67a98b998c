"""Outbound calls (外呼任务): a call message becomes a task on the call centre's list; agents
page through it, claim (of many agents racing for one task exactly one wins), call and
record the outcome, which is the message's receipt — delivered when answered, failed with
the reason otherwise, a refusal withdrawing consent for marketing calls — or book a
callback that reopens the task when due."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts import Topic
from services.reach.store.audience import CONSENTS, FORWARDS
from tests.reach.support import Service, consent, customer_id, policy, send, template
from tests.support.events import published
from tests.support.waiting import eventually

SCRIPT = "您好{{customer_name}}, 我是品牌会员顾问, 您有{{coupon_amount}}元券即将到期"


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"consumer_groups": set()}


async def test_a_call_message_is_a_task_that_exactly_one_agent_claims(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"call": {"per_day": 5, "per_week": 5}})
    await template(api, "call_script", "call", title="券到期提醒", body=SCRIPT)
    lin = customer_id()
    await consent(service, tenant, lin, channel="call")
    sent = await send(api, lin, channel="call", template_id="call_script", coupon_amount="20")
    assert sent["status"] == "sent" and sent["provider"] == "call_task"

    listed = (await api.get("/call-tasks", params={"state": "open"})).json()
    [task] = listed["items"]
    assert task["task_id"] == sent["message_id"] and task["customer_id"] == lin
    assert task["script"] == "您好会员, 我是品牌会员顾问, 您有20元券即将到期"
    assert task["title"] == "券到期提醒" and task["agent"] is None

    async def claim(n: int) -> httpx.Response:
        return await api.post(
            f"/call-tasks/{task['task_id']}/claim", headers={"X-Actor-Id": f"agent-{n}"}
        )

    answers = await asyncio.gather(*(claim(n) for n in range(20)))
    won = [r for r in answers if r.status_code == 200]
    assert len(won) == 1, [r.status_code for r in answers]
    assert sorted({r.status_code for r in answers}) == [200, 409]
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"call_task_taken"}
    winner = won[0].json()["agent"]
    mine = (await api.get("/call-tasks", params={"agent": winner})).json()["items"]
    assert [t["state"] for t in mine] == ["claimed"]
    assert (await api.get("/call-tasks", params={"state": "open"})).json()["items"] == []

    # The holder can give it back, and then anyone may claim it again.
    path = f"/call-tasks/{task['task_id']}"
    assert (await api.post(f"{path}/release", headers={"X-Actor-Id": "agent-x"})).status_code == 409
    released = await api.post(f"{path}/release", headers={"X-Actor-Id": winner})
    assert released.status_code == 200 and released.json()["state"] == "open"
    assert (await api.post(f"{path}/claim", headers={"X-Actor-Id": winner})).status_code == 200
    loser = "agent-x" if winner != "agent-x" else "agent-y"
    not_mine = await api.post(
        f"/call-tasks/{task['task_id']}/outcome",
        json={"outcome": "answered"},
        headers={"X-Actor-Id": loser},
    )
    assert not_mine.status_code == 409 and not_mine.json()["code"] == "call_task_not_yours"

    done = await api.post(
        f"/call-tasks/{task['task_id']}/outcome",
        json={"outcome": "answered", "note": "会来店"},
        headers={"X-Actor-Id": winner},
    )
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "done" and done.json()["attempts"][0]["note"] == "会来店"
    message = (await api.get(f"/messages/{sent['message_id']}")).json()
    assert message["status"] == "delivered"
    again = await api.post(
        f"/call-tasks/{task['task_id']}/outcome",
        json={"outcome": "no_answer"},
        headers={"X-Actor-Id": winner},
    )
    assert again.status_code == 409
    events = await eventually(
        lambda: published(service.bootstrap, tenant=tenant, topic=Topic.REACH),
        until=lambda found: len(found) >= 2,
    )
    assert sorted(e.type for e in events) == ["reach.message_delivered.v1", "reach.message_sent.v1"]


async def test_outcomes_fail_the_message_refusal_withdraws_and_callbacks_reopen(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"call": {"per_day": 5, "per_week": 5}})
    await template(api, "call_script", "call", body=SCRIPT)
    busy, refusing, later = customer_id(), customer_id(), customer_id()
    await consent(service, tenant, busy, refusing, later, channel="call")
    sent = {
        c: (await send(api, c, channel="call", template_id="call_script"))["message_id"]
        for c in (busy, refusing, later)
    }
    for task_id in sent.values():
        assert (
            await api.post(f"/call-tasks/{task_id}/claim", headers={"X-Actor-Id": "agent-1"})
        ).status_code == 200

    async def outcome(customer: str, **body: Any) -> httpx.Response:
        return await api.post(
            f"/call-tasks/{sent[customer]}/outcome", json=body, headers={"X-Actor-Id": "agent-1"}
        )

    assert (await outcome(busy, outcome="no_answer")).status_code == 200
    assert (await outcome(refusing, outcome="refused")).status_code == 200
    callback_at = datetime.now(UTC) + timedelta(seconds=1)
    for bad in (
        {"outcome": "callback"},
        {
            "outcome": "callback",
            "callback_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        },
        {
            "outcome": "callback",
            "callback_at": (datetime.now(UTC) + timedelta(days=40)).isoformat(),
        },
        {"outcome": "answered", "callback_at": callback_at.isoformat()},
        {"outcome": "hung_up"},
    ):
        refused = await outcome(later, **bad)
        assert refused.status_code == 422, (bad, refused.text)
    reopened = await outcome(later, outcome="callback", callback_at=callback_at.isoformat())
    assert reopened.status_code == 200 and reopened.json()["state"] == "open"

    def status(customer: str) -> Any:
        return api.get(f"/messages/{sent[customer]}")

    assert (await status(busy)).json()["reason"] == "call_no_answer"
    assert (await status(refusing)).json()["reason"] == "call_refused"
    assert (await status(later)).json()["status"] == "sent"  # a callback is no receipt yet
    withdrawn = await service.db[CONSENTS].find_one({"tenant": tenant, "customer_id": refusing})
    assert withdrawn["channel"] == "call" and withdrawn["granted"] is False
    assert (
        await service.db[FORWARDS].count_documents({"tenant": tenant, "customer_id": refusing}) == 1
    )
    # The refusing customer gets no more marketing calls.
    assert (await send(api, refusing, channel="call", template_id="call_script"))["reason"] == (
        "no_consent:call:marketing"
    )

    # Not due yet: nobody can claim it; once due, the list shows it and an agent can.
    early = await api.post(f"/call-tasks/{sent[later]}/claim", headers={"X-Actor-Id": "agent-2"})
    assert early.status_code == 409
    await eventually(
        lambda: api.get("/call-tasks", params={"state": "open", "due": "true"}),
        until=lambda r: [t["task_id"] for t in r.json()["items"]] == [sent[later]],
    )
    again = await api.post(f"/call-tasks/{sent[later]}/claim", headers={"X-Actor-Id": "agent-2"})
    assert again.status_code == 200 and again.json()["agent"] == "agent-2"
    assert [a["outcome"] for a in again.json()["attempts"]] == ["callback"]


async def test_the_task_list_pages_by_cursor_and_refuses_bad_input(
    service: Service, tenant: str, api: httpx.AsyncClient
) -> None:
    await policy(api, caps={"call": {"per_day": 5, "per_week": 5}})
    await template(api, "call_script", "call", body=SCRIPT)
    customers = [customer_id() for _ in range(7)]
    await consent(service, tenant, *customers, channel="call")
    for c in customers:
        await send(api, c, channel="call", template_id="call_script")

    seen: list[str] = []
    cursor = None
    while True:
        params = {"state": "open", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/call-tasks", params=params)).json()
        seen += [t["customer_id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(customers) and len(seen) == 7

    for params in ({"state": "ringing"}, {"cursor": "bm90LWpzb24"}, {"limit": 0}, {"agent": "a b"}):
        assert (await api.get("/call-tasks", params=params)).status_code == 422, params
    unknown = await api.post("/call-tasks/msg_" + "0" * 24 + "/claim")
    assert unknown.status_code == 404 and unknown.json()["code"] == "call_task_not_found"
    too_long = {
        "template_id": "long_call",
        "channel": "call",
        "name": "x",
        "content": {"body": "话" * 990 + "{{note}}"},
    }
    refused = await api.post("/templates", json=too_long)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "content.body"

"""Tag sync against a local HTTP server playing WeCom: tokens issued and refreshed when they
lapse, busy replies retried, permanent refusals recorded, unlinked customers reported, and
the tags and marks WeCom received match what happened."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.tagging.sync.store import QUEUE
from tests.support.servers import serve
from tests.support.waiting import eventually
from tests.tagging.support import Service, known_customers, tag
from tests.tagging.wecom import CORP_ID, SECRET, WeComState, wecom_app


@pytest.fixture(scope="module")
def wecom() -> WeComState:
    return WeComState()


@pytest.fixture(scope="module")
async def overrides(wecom: WeComState) -> AsyncIterator[dict[str, Any]]:
    """The tagging service of this module pushes to the stand-in."""
    async with serve(wecom_app(wecom)) as url:
        yield {
            "wecom_base_url": url,
            "wecom_corp_id": CORP_ID,
            "wecom_corp_secret": SECRET,
            "sync_poll_seconds": 0.1,
            "sync_retry_base_seconds": 0.1,
        }


async def link(api: httpx.AsyncClient, customer: str, external: str) -> None:
    body = {"external_userid": external, "userid": "advisor-7"}
    response = await api.put(f"/tag-sync/contacts/{customer}", json=body)
    assert response.status_code == 204, response.text


async def settled_log(api: httpx.AsyncClient, tenant_count: int) -> list[dict[str, Any]]:
    """The sync log once `tenant_count` entries are in a final state."""

    async def probe() -> list[dict[str, Any]]:
        return (await api.get("/tag-sync/log")).json()["items"]

    def done(items: list[dict[str, Any]]) -> bool:
        final = [i for i in items if i["status"] in {"synced", "not_linked", "failed"}]
        return len(final) >= tenant_count

    return await eventually(probe, until=done, within=30)


async def test_marks_and_unmarks_reach_wecom_with_the_token_refreshed(
    api: httpx.AsyncClient, service: Service, tenant: str, wecom: WeComState
) -> None:
    await tag(api, "vip")
    [customer] = await known_customers(service, tenant)
    await link(api, customer, "wm-ext-1")
    assert (await api.put(f"/customers/{customer}/tags/vip", json={})).status_code == 200
    await settled_log(api, 1)
    issued = wecom.tokens_issued
    wecom.expire_tokens()
    assert (await api.delete(f"/customers/{customer}/tags/vip")).status_code == 204
    log = await settled_log(api, 2)
    assert [e["status"] for e in log] == ["synced", "synced"]
    assert [e["change"]["action"] for e in log] == ["unmark", "mark"]
    assert all(e["synced_at"] and e["errcode"] == 0 for e in log)
    assert wecom.tokens_issued == issued + 1
    platform_id = wecom.tags["VIP"]
    mine = [m for m in wecom.marks if m["external_userid"] == "wm-ext-1"]
    assert mine == [
        {"userid": "advisor-7", "external_userid": "wm-ext-1", "add_tag": [platform_id]},
        {"userid": "advisor-7", "external_userid": "wm-ext-1", "remove_tag": [platform_id]},
    ]


async def test_a_busy_wecom_is_retried_until_it_accepts(
    api: httpx.AsyncClient, service: Service, tenant: str, wecom: WeComState
) -> None:
    await tag(api, "busy-day")
    [customer] = await known_customers(service, tenant)
    await link(api, customer, "wm-ext-busy")
    calls = wecom.mark_calls
    wecom.busy_replies = 6
    assert (await api.put(f"/customers/{customer}/tags/busy-day", json={})).status_code == 200
    [entry] = await settled_log(api, 1)
    assert entry["status"] == "synced"
    assert wecom.mark_calls - calls == 7
    assert [m for m in wecom.marks if m["external_userid"] == "wm-ext-busy"]


async def test_a_refusal_is_recorded_and_an_unlinked_customer_reported(
    api: httpx.AsyncClient, service: Service, tenant: str, wecom: WeComState
) -> None:
    await tag(api, "vip")
    refused, unlinked = await known_customers(service, tenant, 2)
    await link(api, refused, "wm-ext-gone")
    wecom.refused.add("wm-ext-gone")
    calls = wecom.mark_calls
    for customer in (refused, unlinked):
        assert (await api.put(f"/customers/{customer}/tags/vip", json={})).status_code == 200
    log = await settled_log(api, 2)
    by_customer = {e["change"]["customer_id"]: e for e in log}
    assert by_customer[refused]["status"] == "failed"
    assert by_customer[refused]["errcode"] == 84061 and by_customer[refused]["attempts"] == 1
    assert by_customer[unlinked]["status"] == "not_linked"
    assert wecom.mark_calls - calls == 1
    await eventually(
        lambda: service.db[QUEUE].count_documents({"tenant": tenant}), until=lambda n: n == 0
    )

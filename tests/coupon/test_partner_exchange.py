"""Partner exchange through the coupon service (the gateway's part is in
test_partner_gateway.py): quotas allocated by staff, codes taken within them even by
concurrent takers, coupons issued to our customers named by mobile (the real customer
service resolves them), counted once per reference, per-partner rates, and the partner's
own offers given to our customers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.coupon.domain.codes import is_well_formed
from services.coupon.store.codes import CODES
from services.customer.main import create_app as create_customer
from services.customer.settings import CustomerSettings
from tests.coupon.support import Service, batch_spec, iso, now, ok, running_batches
from tests.support.running import RunningService
from tests.support.servers import serve
from tests.support.settings import settings_for

Customer = RunningService[CustomerSettings]
PARTNER = "ptn_" + "a1" * 12
OTHER = "ptn_" + "b2" * 12


@pytest.fixture(scope="module")
async def customer_service(infra: Any) -> AsyncIterator[Customer]:
    settings = settings_for(CustomerSettings, infra, uuid.uuid4().hex[:10])
    app = create_customer(settings)
    async with serve(app) as url:
        yield Customer(url, app, settings)


@pytest.fixture(scope="module")
def overrides(customer_service: Customer) -> dict[str, Any]:
    return {"customer_base_url": customer_service.url, "partner_codes_per_take": 100}


def as_partner(partner_id: str = PARTNER) -> dict[str, str]:
    return {"X-Actor-Kind": "partner", "X-Actor-Id": partner_id, "X-Actor-Roles": "partner"}


@pytest.fixture
async def partner(service: Service, tenant: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-Tenant-Id": tenant, **as_partner()}
    async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=60) as client:
        yield client


async def register_customer(customer_service: Customer, tenant: str, mobile: str) -> str:
    headers = {"X-Tenant-Id": tenant, "X-Actor-Id": "ops-1"}
    async with httpx.AsyncClient(base_url=customer_service.url, headers=headers) as crm:
        body = {"display_name": "王先生", "source_channel": "store", "mobile": mobile}
        return str((await ok(crm.post("/customers", json=body), 201))["id"])


async def quota_on(
    api: httpx.AsyncClient, codes: int, direct_issues: int, partner_id: str = PARTNER, **spec: Any
) -> str:
    batch_id = (await running_batches(api, batch_spec(stock=1_000, **spec)))["main"]
    body = {"partner_id": partner_id, "codes": codes, "direct_issues": direct_issues}
    await ok(api.post(f"/batches/{batch_id}/partner-quotas", json=body))
    return batch_id


async def take(partner: httpx.AsyncClient, batch_id: str, count: int) -> httpx.Response:
    return await partner.post(f"/partner/batches/{batch_id}/codes", json={"count": count})


async def test_a_partner_takes_codes_within_its_quota_and_customers_redeem_them(
    api: httpx.AsyncClient, partner: httpx.AsyncClient
) -> None:
    batch_id = await quota_on(api, codes=50, direct_issues=0)
    taken = await ok(take(partner, batch_id, 20), 201)
    assert taken["codes_left"] == 30 and len(taken["codes"]) == 20
    assert all(is_well_formed(c["code"]) for c in taken["codes"])
    first = taken["codes"][0]

    redeemed = await api.post(
        "/codes/redemptions", json={"customer_id": "cus-p1", "code": first["code"]}
    )
    assert redeemed.status_code == 201, redeemed.text
    coupon = redeemed.json()
    assert coupon["channel"] == f"partner:{PARTNER}" and coupon["reference"] == first["code_id"]

    over = await take(partner, batch_id, 31)
    assert over.status_code == 409 and over.json()["code"] == "quota_exhausted"
    last = await ok(take(partner, batch_id, 30), 201)
    assert last["codes_left"] == 0
    quotas = await ok(partner.get("/partner/quotas"))
    assert [(q["batch_id"], q["codes"], q["codes_left"]) for q in quotas] == [(batch_id, 50, 0)]

    # A take whose answer was lost shows in the partner's lots and can be voided.
    lots = await ok(partner.get("/partner/code-lots", params={"batch_id": batch_id}))
    assert [lot["count"] for lot in lots] == [30, 20]
    await ok(partner.post(f"/partner/code-lots/{lots[0]['id']}/void"))
    other = await partner.post(
        f"/partner/code-lots/{lots[0]['id']}/void", headers=as_partner(OTHER)
    )
    assert other.status_code == 404
    lost = await api.post(
        "/codes/redemptions", json={"customer_id": "cus-p2", "code": last["codes"][0]["code"]}
    )
    assert lost.status_code == 409 and lost.json()["code"] == "code_not_redeemable"


async def test_concurrent_takes_never_exceed_the_quota(
    api: httpx.AsyncClient, partner: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    batch_id = await quota_on(api, codes=100, direct_issues=0)
    answers = await asyncio.gather(*(take(partner, batch_id, 7) for _ in range(20)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] * 14 + [409] * 6, statuses
    codes = {c["code"] for r in answers if r.status_code == 201 for c in r.json()["codes"]}
    assert len(codes) == 98
    stored = await service.db[CODES].count_documents({"tenant": tenant, "partner_id": PARTNER})
    assert stored == 98
    quota = (await ok(api.get(f"/partners/{PARTNER}/quotas")))[0]
    assert quota["codes_left"] == 2


async def test_partner_and_staff_routes_are_kept_apart_and_bad_requests_change_nothing(
    api: httpx.AsyncClient, partner: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    batch_id = await quota_on(api, codes=10, direct_issues=1)
    staff_call = await partner.post(
        f"/batches/{batch_id}/partner-quotas",
        json={"partner_id": PARTNER, "codes": 999, "direct_issues": 0},
    )
    assert staff_call.status_code == 403
    assert (
        await api.post(f"/partner/batches/{batch_id}/codes", json={"count": 1})
    ).status_code == 403
    assert (await partner.get("/partner-webhooks/deliveries")).status_code == 403

    other = await partner.post(
        f"/partner/batches/{batch_id}/codes", json={"count": 1}, headers=as_partner(OTHER)
    )
    assert other.status_code == 404 and other.json()["code"] == "quota_not_found"
    for body in ({"count": 0}, {"count": 101}, {"count": "1"}, {"count": 1, "extra": 1}):
        assert (
            await partner.post(f"/partner/batches/{batch_id}/codes", json=body)
        ).status_code == 422
    keyed = await partner.post(
        f"/partner/batches/{batch_id}/codes",
        json={"count": 1},
        headers={"Idempotency-Key": "take-key-0001"},
    )
    assert keyed.status_code == 422

    await ok(take(partner, batch_id, 4), 201)
    below = await api.post(
        f"/batches/{batch_id}/partner-quotas",
        json={"partner_id": PARTNER, "codes": 3, "direct_issues": 1},
    )
    assert below.status_code == 409 and below.json()["code"] == "quota_below_used"
    raised = await ok(
        api.post(
            f"/batches/{batch_id}/partner-quotas",
            json={"partner_id": PARTNER, "codes": 20, "direct_issues": 1},
        )
    )
    assert raised["codes_left"] == 16
    bad_partner = await api.post(
        f"/batches/{batch_id}/partner-quotas",
        json={"partner_id": "ptn_x", "codes": 1, "direct_issues": 1},
    )
    assert bad_partner.status_code == 422
    assert await service.db[CODES].count_documents({"tenant": tenant}) == 4


async def issue(partner: httpx.AsyncClient, batch_id: str, mobile: str, ref: str) -> httpx.Response:
    return await partner.post(
        f"/partner/batches/{batch_id}/issues", json={"mobile": mobile, "reference": ref}
    )


async def test_a_partner_issues_to_a_customer_named_by_mobile_counted_once_per_reference(
    api: httpx.AsyncClient,
    partner: httpx.AsyncClient,
    customer_service: Customer,
    tenant: str,
) -> None:
    wang = await register_customer(customer_service, tenant, "13812345678")
    li = await register_customer(customer_service, tenant, "13900001111")
    batch_id = await quota_on(api, codes=0, direct_issues=2)

    # Ten concurrent first sends of one reference: one coupon, counted once.
    sends = await asyncio.gather(
        *(issue(partner, batch_id, "138 1234 5678", "order-1") for _ in range(10))
    )
    assert sorted(r.status_code for r in sends) == [200] * 9 + [201], [r.text for r in sends]
    coupon = sends[0].json()
    assert {r.json()["id"] for r in sends} == {coupon["id"]}
    assert coupon["customer_id"] == wang and coupon["channel"] == f"partner:{PARTNER}"
    assert coupon["reference"] == f"partner:{PARTNER}:order-1"
    again = await issue(partner, batch_id, "13812345678", "order-1")
    assert again.status_code == 200 and again.json()["id"] == coupon["id"]
    quota = (await ok(partner.get("/partner/quotas")))[0]
    assert quota["issues_left"] == 1

    reused = await issue(partner, batch_id, "13900001111", "order-1")
    assert reused.status_code == 409 and reused.json()["code"] == "reference_reused"
    unknown = await issue(partner, batch_id, "13700000000", "order-2")
    assert unknown.status_code == 404 and unknown.json()["code"] == "customer_not_found"
    assert (await issue(partner, batch_id, "12345", "order-2")).status_code == 422

    assert (await issue(partner, batch_id, "13900001111", "order-3")).json()["customer_id"] == li
    spent = await issue(partner, batch_id, "13900001111", "order-4")
    assert spent.status_code == 409 and spent.json()["code"] == "quota_exhausted"


async def test_a_refused_issue_gives_the_unit_back(
    api: httpx.AsyncClient, partner: httpx.AsyncClient, customer_service: Customer, tenant: str
) -> None:
    await register_customer(customer_service, tenant, "13512345678")
    batch_id = await quota_on(api, codes=0, direct_issues=5)
    assert (await issue(partner, batch_id, "13512345678", "a")).status_code == 201
    refused = await issue(partner, batch_id, "13512345678", "b")
    assert refused.status_code == 409 and refused.json()["code"] == "limit_reached"
    assert (await ok(partner.get("/partner/quotas")))[0]["issues_left"] == 4


async def test_a_partner_has_its_own_request_rate(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    slow = "ptn_" + "c3" * 12
    await ok(api.put(f"/partners/{slow}/rate", json={"requests_per_second": 2}))
    headers = {"X-Tenant-Id": tenant, **as_partner(slow)}
    async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
        answers = await asyncio.gather(*(client.get("/partner/quotas") for _ in range(10)))
    limited = [r for r in answers if r.status_code == 429]
    assert len(limited) >= 6 and int(limited[0].headers["Retry-After"]) >= 1
    assert {r.status_code for r in answers} <= {200, 429}


def offer_body(**fields: Any) -> dict[str, Any]:
    return {
        "title": "航空里程 500",
        "value": 5_000,
        "valid_from": iso(now() - timedelta(days=1)),
        "valid_until": iso(now() + timedelta(days=30)),
        **fields,
    }


async def test_partner_offers_are_given_one_per_customer_and_listed_apart(
    api: httpx.AsyncClient, partner: httpx.AsyncClient
) -> None:
    with_codes = await ok(
        partner.post("/partner/offers", json=offer_body(codes=["M-1", "M-2"])), 201
    )
    assert with_codes["total"] == 2 and with_codes["has_codes"]
    give = f"/partner-offers/{with_codes['id']}/gives"
    first = await ok(api.post(give, json={"customer_id": "cus-o1"}), 201)
    assert first["code"] == "M-1" and first["partner_id"] == PARTNER and first["value"] == 5_000
    assert (await ok(api.post(give, json={"customer_id": "cus-o1"})))["id"] == first["id"]
    assert (await ok(api.post(give, json={"customer_id": "cus-o2"}), 201))["code"] == "M-2"
    none_left = await api.post(give, json={"customer_id": "cus-o3"})
    assert none_left.status_code == 409 and none_left.json()["code"] == "offer_exhausted"

    counted = await ok(partner.post("/partner/offers", json=offer_body(count=3)), 201)
    gives = await asyncio.gather(
        *(
            api.post(f"/partner-offers/{counted['id']}/gives", json={"customer_id": f"cus-c{i}"})
            for i in range(10)
        )
    )
    assert sorted(r.status_code for r in gives) == [201] * 3 + [409] * 7
    assert sorted(r.json()["number"] for r in gives if r.status_code == 201) == [1, 2, 3]

    listed = await ok(api.get("/customers/cus-o1/partner-coupons"))
    assert [(c["offer_id"], c["code"]) for c in listed] == [(with_codes["id"], "M-1")]
    wallet = await ok(api.get("/customers/cus-o1/coupons"))
    assert wallet["items"] == []
    mine = await ok(partner.get("/partner/offers"))
    assert {o["id"]: o["left"] for o in mine} == {with_codes["id"]: 0, counted["id"]: 0}
    deliveries = await ok(api.get("/partner-webhooks/deliveries", params={"partner_id": PARTNER}))
    assert sum(d["type"] == "partner_offer.given" for d in deliveries) == 5


async def test_bad_offers_are_refused(partner: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    bad = [
        offer_body(),
        offer_body(codes=["A"], count=1),
        offer_body(codes=["A", "A"]),
        offer_body(count=1, valid_until=iso(now() - timedelta(days=2))),
        offer_body(count=1, value=0),
        offer_body(codes=[{"$gt": ""}]),
        offer_body(count=1, title=""),
    ]
    for body in bad:
        assert (await partner.post("/partner/offers", json=body)).status_code == 422, body
    assert await ok(partner.get("/partner/offers")) == []
    expired = await ok(
        partner.post(
            "/partner/offers",
            json=offer_body(count=1, valid_until=iso(now() - timedelta(seconds=1))),
        ),
        201,
    )
    refused = await api.post(f"/partner-offers/{expired['id']}/gives", json={"customer_id": "c"})
    assert refused.status_code == 409 and refused.json()["code"] == "offer_not_valid"
    missing = await api.post("/partner-offers/pof_nope/gives", json={"customer_id": "c"})
    assert missing.status_code == 404

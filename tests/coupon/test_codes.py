"""Redeem codes through the service: lots made in bulk and shown once (the store holds only
digests), a customer exchanging a code, one generic refusal for unknown and used codes,
exactly one coupon for one code under 20 concurrent callers, guessing limited (429)."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx
import pytest

from services.coupon.domain.codes import display, is_well_formed, new_code
from services.coupon.store.codes import CODES, LOTS
from tests.coupon.support import Service, batch_spec, claim, ok, running_batches

FAILURES = 5


@pytest.fixture(scope="module")
def overrides() -> dict[str, Any]:
    return {"code_failures_per_window": FAILURES, "code_insert_chunk": 2_000}


async def batch_with_codes(api: httpx.AsyncClient, count: int, **spec: Any) -> tuple[str, dict]:
    batch_id = (await running_batches(api, batch_spec(**spec)))["main"]
    made = await ok(api.post(f"/batches/{batch_id}/code-lots", json={"count": count}), 201)
    return batch_id, made


async def redeem(api: httpx.AsyncClient, customer_id: str, code: str) -> httpx.Response:
    return await api.post("/codes/redemptions", json={"customer_id": customer_id, "code": code})


def problem(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    return {k: body[k] for k in ("status", "title", "detail", "code")}


async def test_a_lot_is_made_in_bulk_and_the_store_keeps_only_digests(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    started = time.perf_counter()
    batch_id, made = await batch_with_codes(api, 5_000)
    elapsed = time.perf_counter() - started
    codes = made["codes"]
    assert made["lot"]["count"] == 5_000 and made["lot"]["batch_id"] == batch_id
    assert len(set(codes)) == 5_000 and all(is_well_formed(c) for c in codes)
    print(f"5,000 codes in {elapsed:.2f}s (batch set-up included)")

    stored = await service.db[CODES].find({"tenant": tenant}).to_list()
    assert len(stored) == 5_000
    text = repr(stored) + repr(await service.db[LOTS].find({"tenant": tenant}).to_list())
    assert not any(code in text for code in codes[:200])
    assert {d["number"] for d in stored} == set(range(1, 5_001))

    as_csv = await api.post(f"/batches/{batch_id}/code-lots?format=csv", json={"count": 3})
    assert as_csv.status_code == 201 and as_csv.headers["content-type"].startswith("text/csv")
    lines = as_csv.text.splitlines()
    assert lines[0] == "code" and len(lines) == 4 and all(is_well_formed(c) for c in lines[1:])

    lots = await ok(api.get(f"/batches/{batch_id}/code-lots"))
    assert [lot["count"] for lot in lots] == [3, 5_000]


async def test_bad_lot_requests_are_refused_and_change_nothing(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    batch_id = (await running_batches(api, batch_spec()))["main"]
    path = f"/batches/{batch_id}/code-lots"
    for body, status in [({"count": 0}, 422), ({"count": 100_001}, 422), ({"count": "x"}, 422)]:
        assert (await api.post(path, json=body)).status_code == status
    keyed = await api.post(path, json={"count": 2}, headers={"Idempotency-Key": "lot-key-0001"})
    assert keyed.status_code == 422 and keyed.json()["code"] == "idempotency_key_not_allowed"
    missing = await api.post("/batches/nope/code-lots", json={"count": 2})
    assert missing.status_code == 404
    as_partner = await api.post(
        path, json={"count": 2}, headers={"X-Actor-Kind": "partner", "X-Actor-Id": "ptn_x"}
    )
    assert as_partner.status_code == 403
    assert await service.db[CODES].count_documents({"tenant": tenant}) == 0


async def test_a_customer_redeems_a_code_once_and_again_gets_the_same_coupon(
    api: httpx.AsyncClient,
) -> None:
    batch_id, made = await batch_with_codes(api, 3)
    code = made["codes"][0]
    first = await redeem(api, "cus-a", display(code).lower())
    assert first.status_code == 201, first.text
    coupon = first.json()
    assert coupon["batch_id"] == batch_id and coupon["customer_id"] == "cus-a"
    assert coupon["channel"] == "redeem_code"
    assert coupon["reference"] == f"{made['lot']['id']}.1"
    assert code not in first.text

    again = await redeem(api, "cus-a", code)
    assert again.status_code == 200 and again.json()["id"] == coupon["id"]
    wallet = await ok(api.get("/customers/cus-a/coupons"))
    assert [c["id"] for c in wallet["items"]] == [coupon["id"]]
    lot = await ok(api.get(f"/code-lots/{made['lot']['id']}"))
    assert lot["used"] == 1 and lot["count"] == 3


async def test_unknown_and_used_codes_get_one_answer_at_one_cost(api: httpx.AsyncClient) -> None:
    _, made = await batch_with_codes(api, 2)
    used = made["codes"][0]
    assert (await redeem(api, "owner", used)).status_code == 201

    unknown_times, used_times, answers = [], [], []
    for i in range(4):
        for code, times in ((new_code(), unknown_times), (used, used_times)):
            started = time.perf_counter()
            response = await redeem(api, f"guesser-{i}", code)
            times.append(time.perf_counter() - started)
            assert response.status_code == 409, response.text
            answers.append(problem(response))
    assert all(a == answers[0] for a in answers)
    assert answers[0]["code"] == "code_not_redeemable"
    slower, faster = sorted([statistics.median(unknown_times), statistics.median(used_times)])
    assert slower < faster * 10, (unknown_times, used_times)

    mistyped = made["codes"][1][:-1] + ("2" if made["codes"][1][-1] != "2" else "3")
    typo = await redeem(api, "owner", mistyped)
    assert typo.status_code == 422 and typo.json()["code"] == "code_mistyped"
    injected = await api.post(
        "/codes/redemptions", json={"customer_id": "owner", "code": {"$gt": ""}}
    )
    assert injected.status_code == 422
    member = {"X-Actor-Kind": "member", "X-Actor-Id": "someone-else"}
    body = {"customer_id": "owner", "code": made["codes"][1]}
    as_other = await api.post("/codes/redemptions", json=body, headers=member)
    assert as_other.status_code == 403 and as_other.json()["code"] == "not_this_member"


async def test_twenty_concurrent_redemptions_of_one_code_issue_exactly_one_coupon(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    batch_id, made = await batch_with_codes(api, 2)
    contested, repeated = made["codes"]
    answers = await asyncio.gather(*(redeem(api, f"racer-{i}", contested) for i in range(20)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * 19, statuses

    same = await asyncio.gather(*(redeem(api, "eager", repeated) for _ in range(20)))
    assert {r.status_code for r in same} <= {200, 201}
    assert len({r.json()["id"] for r in same}) == 1
    issued = await service.db["coupons"].count_documents({"tenant": tenant, "batch_id": batch_id})
    assert issued == 2


async def test_a_refused_claim_gives_the_code_back(api: httpx.AsyncClient) -> None:
    batch_id, made = await batch_with_codes(api, 1)
    assert (await claim(api, batch_id, "holder")).status_code == 201
    code = made["codes"][0]
    refused = await redeem(api, "holder", code)
    assert refused.status_code == 409 and refused.json()["code"] == "limit_reached"
    assert (await redeem(api, "newcomer", code)).status_code == 201


async def test_guessing_is_limited_per_customer_with_retry_after(api: httpx.AsyncClient) -> None:
    _, made = await batch_with_codes(api, 1)
    for _ in range(FAILURES):
        assert (await redeem(api, "guesser", new_code())).status_code == 409
    limited = await redeem(api, "guesser", made["codes"][0])
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert 0 < int(limited.headers["Retry-After"]) <= 600
    # Another customer is not affected, and the code was not spent by the refused try.
    assert (await redeem(api, "honest", made["codes"][0])).status_code == 201


async def test_a_voided_lot_refuses_its_free_codes_like_unknown_ones(
    api: httpx.AsyncClient,
) -> None:
    _, made = await batch_with_codes(api, 2)
    lot_id = made["lot"]["id"]
    kept, voided = made["codes"]
    coupon = await ok(redeem(api, "early", kept), 201)
    void = await ok(api.post(f"/code-lots/{lot_id}/void"))
    assert void["voided_at"] and void["voided_by"] == "ops-1"
    assert (await ok(api.post(f"/code-lots/{lot_id}/void")))["voided_at"] == void["voided_at"]

    refused = await redeem(api, "late", voided)
    unknown = await redeem(api, "late", new_code())
    assert refused.status_code == 409 and problem(refused) == problem(unknown)
    again = await redeem(api, "early", kept)  # what was redeemed stays its customer's
    assert again.status_code == 200 and again.json()["id"] == coupon["id"]
    assert (await api.post("/code-lots/lot_nope/void")).status_code == 404
    assert (await api.get("/code-lots/lot_nope")).status_code == 404

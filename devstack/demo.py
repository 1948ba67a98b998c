"""The demo tenant `make up` loads through the gateway, as a client would."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

import httpx

DEMO_TENANT = "demo"
DEMO_CUSTOMERS = [
    ("Li Na", "store"),
    ("Wang Fang", "mini_program"),
    ("Zhang Wei", "app"),
    ("Liu Yang", "mini_program"),
    ("Chen Jing", "store"),
    ("Yang Min", "partner"),
    ("Zhao Lei", "app"),
    ("Huang Li", "import"),
    ("Zhou Jie", "mini_program"),
    ("Wu Xia", "web"),
    ("Xu Tao", "store"),
    ("Sun Yan", "app"),
]
READY_WITHIN_SECONDS = 90


def wait_until_green(client: httpx.Client) -> bool:
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while time.monotonic() < deadline:
        try:
            if client.get("/healthz").status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    return False


def load_demo(client: httpx.Client) -> int:
    """Register the demo customers unless the tenant already has some (data persists in
    .devstack between runs), with a custom field, consents, orders and behaviour. Each
    write carries an Idempotency-Key, so a retry is safe."""
    headers = {"X-Tenant-Id": DEMO_TENANT}
    existing = client.get("/api/v1/customer/customers", params={"limit": 1}, headers=headers)
    existing.raise_for_status()
    if existing.json()["items"]:
        return 0
    post = _poster(client, headers)
    post("/custom-fields", PREFERRED_STORE, key="demo-field-preferred-store")
    _demo_loyalty(client, headers)
    _demo_reach(client, headers)
    ids = []
    for i, (name, channel) in enumerate(DEMO_CUSTOMERS):
        profile = {
            "display_name": name,
            "source_channel": channel,
            "mobile": f"1380000{i:04d}",
            "owner_id": f"advisor-{i % 3 + 1}",
            "custom_fields": {"preferred_store": STORES[i % len(STORES)]},
        }
        ids.append(post("/customers", profile, key=f"demo-customer-{i:04d}")["id"])
    for i, customer_id in enumerate(ids):
        if i % 2 == 0:
            consent = {"granted": True, "source": "mini_program_popup"}
            _put(client, headers, f"/customers/{customer_id}/consents/sms/marketing", consent)
        if i < 6:
            post("/orders/paid", _order(customer_id, i), key=f"demo-order-{i:04d}")
    events = [_view(customer_id, n) for customer_id in ids for n in range(3)]
    post("/behaviour/batch", {"events": events}, key="demo-behaviour")
    _demo_segments(client, headers)
    _demo_coupons(client, headers)
    _demo_compensation_and_subsidy(client, headers, ids[0])
    _demo_drops(client, headers)
    return len(DEMO_CUSTOMERS)


DEMO_SEGMENTS = [
    {
        "name": "Spent at least ¥300",
        "rule": {"field": "total_amount", "op": "gte", "value": 30_000},
    },
    {"name": "Reachable by marketing SMS", "template_id": "builtin.sms_reachable"},
    {
        "name": "Repeat buyers",
        "template_id": "builtin.repeat_buyers",
        "parameters": {"min_orders": 2},
    },
]


def _demo_segments(client: httpx.Client, headers: dict[str, str]) -> None:
    """Segments the console shows at once; each is built as soon as it is created."""
    for i, segment in enumerate(DEMO_SEGMENTS):
        keyed = {**headers, "Idempotency-Key": f"demo-segment-{i}"}
        client.post("/api/v1/tagging/segments", json=segment, headers=keyed).raise_for_status()


DEMO_TIERS = {
    "tiers": [
        {"tier_id": "silver", "name": "Silver", "threshold": 0},
        {"tier_id": "gold", "name": "Gold", "threshold": 500, "points_multiplier": 150},
        {"tier_id": "black", "name": "Black", "threshold": 2_000, "points_multiplier": 200},
    ],
    "growth_basis": "spend",
}
DEMO_EARNING_RULE = {"points_per_unit": 1, "first_order_bonus": 100, "birthday_bonus": 200}


def _demo_loyalty(client: httpx.Client, headers: dict[str, str]) -> None:
    """A tier scheme and an earning rule, set before the demo orders so they earn points."""
    for path, body in (("tier-scheme", DEMO_TIERS), ("earning-rule", DEMO_EARNING_RULE)):
        client.put(f"/api/v1/loyalty/{path}", json=body, headers=headers).raise_for_status()


DEMO_REACH_TEMPLATES = [
    {
        "template_id": "coupon-arrived",
        "channel": "sms",
        "name": "Coupon arrived",
        "content": {
            "sign_name": "品牌商城",
            "body": "{{customer_name}}您好, {{coupon_amount}}元券已到账, {{coupon_expiry}}前有效",
        },
        "defaults": {"customer_name": "会员"},
    },
    {
        "template_id": "tier-up",
        "channel": "sms",
        "name": "Tier upgraded",
        "content": {
            "sign_name": "品牌商城",
            "body": "恭喜{{customer_name}}升级为{{tier_name}}会员",
        },
        "defaults": {"customer_name": "会员"},
    },
    {
        "template_id": "coupon-expiring",
        "channel": "sms",
        "name": "Coupon about to expire",
        "content": {
            "sign_name": "品牌商城",
            "body": "{{customer_name}}, 您的{{coupon_amount}}元券将于{{coupon_expiry}}到期",
        },
        "defaults": {"customer_name": "会员"},
    },
]
#: Who hears of coupon alerts: the demo budget's owner, and ops for the rest (sandbox email).
DEMO_REACH_TEAMS = {
    "growth": [{"kind": "email", "address": "growth@demo.example", "name": "增长组"}],
    "ops": [{"kind": "email", "address": "ops@demo.example", "name": "运营值班"}],
}
DEMO_REACH_RULES = [
    {
        "name": "Tell of a claimed coupon",
        "trigger": "coupon_claimed",
        "channel": "sms",
        "template_id": "coupon-arrived",
    },
    {
        "name": "Congratulate an upgrade",
        "trigger": "tier_upgraded",
        "channel": "sms",
        "template_id": "tier-up",
    },
    {
        "name": "Remind of a coupon about to expire",
        "trigger": "coupon_expiring",
        "channel": "sms",
        "template_id": "coupon-expiring",
    },
]


def _demo_reach(client: httpx.Client, headers: dict[str, str]) -> None:
    """SMS templates and triggered rules (claimed coupon, tier upgrade, coupon about to
    expire), set before the demo orders and coupons so their events send messages the
    sandbox outbox shows; and the staff who hear of coupon alerts."""
    for i, template in enumerate(DEMO_REACH_TEMPLATES):
        keyed = {**headers, "Idempotency-Key": f"demo-reach-template-{i}"}
        client.post("/api/v1/reach/templates", json=template, headers=keyed).raise_for_status()
    for i, rule in enumerate(DEMO_REACH_RULES):
        keyed = {**headers, "Idempotency-Key": f"demo-reach-rule-{i}"}
        client.post("/api/v1/reach/rules", json=rule, headers=keyed).raise_for_status()
    for team, contacts in DEMO_REACH_TEAMS.items():
        path = f"/api/v1/reach/teams/{team}/contacts"
        client.put(path, json={"contacts": contacts}, headers=headers).raise_for_status()


def _demo_coupons(client: httpx.Client, headers: dict[str, str]) -> None:
    """A growth budget, and a running campaign with one batch (满100减10, 500 coupons).
    Dates start at today's midnight, so a retry the same day sends the same bodies."""
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    staff = {**headers, "X-Actor-Id": "ops-demo", "X-Actor-Roles": "budget_approver"}

    def post(path: str, body: dict | None, key: str) -> dict:
        keyed = {**staff, "Idempotency-Key": key}
        response = client.post(f"/api/v1/coupon{path}", json=body, headers=keyed)
        response.raise_for_status()
        return response.json()

    budget = post("/budgets", {
        "name": "Growth Q4", "owner_kind": "department", "owner": "growth", "amount": 5_000_000,
        "starts_at": now.isoformat(), "ends_at": (now + timedelta(days=90)).isoformat(),
    }, "demo-coupon-budget")  # fmt: skip
    batch = {
        "key": "welcome", "name": "Welcome 10 off 100",
        "discount": {"kind": "threshold", "amount": 1_000, "threshold": 10_000},
        "claim_from": now.isoformat(), "claim_until": (now + timedelta(days=30)).isoformat(),
        "validity": {"days_after_claim": 7}, "stock": 500,
    }  # fmt: skip
    body = {"name": "Welcome campaign", "budget_id": budget["id"], "batches": [batch]}
    campaign = post("/campaigns", body, "demo-coupon-campaign")
    for step in ("submit", "approve", "start"):
        post(f"/campaigns/{campaign['id']}/{step}", None, f"demo-coupon-{step}")


PREFERRED_STORE = {
    "key": "preferred_store",
    "label": "Preferred store",
    "type": "enum",
    "options": ["hangzhou-west-lake", "shanghai-jingan", "beijing-sanlitun"],
    "searchable": True,
}
STORES = PREFERRED_STORE["options"]


def _poster(client: httpx.Client, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    def post(path: str, body: dict, *, key: str) -> dict:
        response = client.post(
            f"/api/v1/customer{path}", json=body, headers={**headers, "Idempotency-Key": key}
        )
        response.raise_for_status()
        return response.json()

    return post


def _put(client: httpx.Client, headers: dict[str, str], path: str, body: dict) -> None:
    client.put(f"/api/v1/customer{path}", json=body, headers=headers).raise_for_status()


def _order(customer_id: str, i: int) -> dict:
    amount = 19_900 + i * 5_000
    return {
        "order_id": f"demo-order-{i:04d}",
        "customer_id": customer_id,
        "amount": amount,
        "lines": [
            {
                "line_id": "1",
                "sku": f"SKU-{i}",
                "category": "apparel",
                "quantity": 1,
                "amount": amount,
            }
        ],
        "channel": "mini_program",
        "paid_at": (datetime.now(UTC) - timedelta(days=i * 7)).isoformat(),
    }


def _view(customer_id: str, n: int) -> dict:
    return {
        "customer_id": customer_id,
        "kind": "product_view",
        "occurred_at": (datetime.now(UTC) - timedelta(hours=n)).isoformat(),
        "target": {"product_id": f"P-{n}", "category": "apparel"},
    }


def load_demo_when_ready(gateway_url: str) -> None:
    with httpx.Client(base_url=gateway_url, timeout=10) as client:
        if not wait_until_green(client):
            print(f"devstack: the gateway at {gateway_url} is not green yet; see /healthz")
            return
        try:
            loaded = load_demo(client)
        except httpx.HTTPError as exc:
            print(f"devstack: loading the demo tenant failed: {exc}", file=sys.stderr)
            return
    what = f"{loaded} demo customers loaded" if loaded else "demo data already present"
    print(
        f"\n  The platform is up: gateway {gateway_url}  ({what})\n"
        f"  health   {gateway_url}/healthz\n"
        f"  API docs {gateway_url}/api/v1/docs\n"
        f"  try      curl -H 'X-Tenant-Id: {DEMO_TENANT}' "
        f"{gateway_url}/api/v1/customer/customers\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )


def _demo_compensation_and_subsidy(
    client: httpx.Client, headers: dict[str, str], customer_id: str
) -> None:
    """Compensation batches (5 and 10 yuan) with a policy, one compensation issued, and a
    subsidy plan for three merchants (compensation-and-subsidy part, issue 7)."""
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    staff = {**headers, "X-Actor-Id": "ops-demo",
             "X-Actor-Roles": "budget_approver,compensation_reviewer"}  # fmt: skip

    def send(method: str, path: str, body: dict | None, key: str) -> dict:
        keyed = {**staff, "Idempotency-Key": key}
        response = client.request(method, f"/api/v1/coupon{path}", json=body, headers=keyed)
        response.raise_for_status()
        return response.json()

    window = {  # claiming is over: only grants (compensation) issue these coupons
        "claim_from": (now - timedelta(days=1)).isoformat(),
        "claim_until": now.isoformat(),
        "validity": {"days_after_claim": 7},
        "stock": 200,
        "per_customer_limit": 10,
    }
    batches = [
        {"key": f"sorry-{v // 100}", "name": f"Sorry, {v // 100} yuan off",
         "discount": {"kind": "threshold", "amount": v, "threshold": v * 10}, **window}
        for v in (500, 1_000)
    ]  # fmt: skip
    budget = send("POST", "/budgets", {
        "name": "Service recovery", "owner_kind": "department", "owner": "service",
        "amount": 1_000_000, "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(days=90)).isoformat(),
    }, "demo-compensation-budget")  # fmt: skip
    body = {"name": "Service recovery", "budget_id": budget["id"], "batches": batches}
    campaign = send("POST", "/campaigns", body, "demo-compensation-campaign")
    for step in ("submit", "approve", "start"):
        done = send("POST", f"/campaigns/{campaign['id']}/{step}", None, f"demo-comp-{step}")
    month = {"period": "month", "max_count": 3, "max_amount": 2_000}
    policy = {"batch_ids": list(done["batch_ids"].values()), "min_value": 500,
              "max_value": 1_000, "review_above": 500, "period_limits": [month]}  # fmt: skip
    send("PUT", "/compensation-policy", policy, "demo-compensation-policy")
    ask = {"customer_id": customer_id, "reason": "parcel arrived two days late",
           "value": 500, "reference": "demo-ticket-1"}  # fmt: skip
    send("POST", "/compensations", ask, "demo-compensation-1")
    plan = send("POST", "/subsidy-plans", {
        "name": "New-customer subsidy", "budget_id": budget["id"], "subject_kind": "merchant",
        "floor": 10_000, "ceiling": 50_000, "shape": 2.0,
    }, "demo-subsidy-plan")  # fmt: skip
    shops = [("m_tea", 0.30, 0.45, 8_800), ("m_noodles", 0.18, 0.30, 4_200),
             ("m_bakery", 0.12, 0.10, 3_600)]  # fmt: skip
    candidates = [{"candidate_id": m, "conversion": c, "repurchase": r,
                   "average_order_value": a} for m, c, r, a in shops]  # fmt: skip
    send("PUT", f"/subsidy-plans/{plan['id']}/indicators", {"candidates": candidates},
         "demo-subsidy-indicators")  # fmt: skip


def _demo_drops(client: httpx.Client, headers: dict[str, str]) -> None:
    """On-site drops (channels part, issue 7): a random red packet batch (1 to 8 yuan,
    decaying for repeat claims; its claim window over, so only drops issue it) dropped on
    login with a 30 % chance, once a day per customer."""
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    staff = {**headers, "X-Actor-Id": "ops-demo", "X-Actor-Roles": "budget_approver"}

    def post(path: str, body: dict | None, key: str) -> dict:
        keyed = {**staff, "Idempotency-Key": key}
        response = client.post(f"/api/v1/coupon{path}", json=body, headers=keyed)
        response.raise_for_status()
        return response.json()

    window = {"starts_at": now.isoformat(), "ends_at": (now + timedelta(days=90)).isoformat()}
    budget = post("/budgets", {"name": "Login red packets", "owner_kind": "department",
                               "owner": "growth", "amount": 1_000_000, **window},
                  "demo-drops-budget")  # fmt: skip
    packet = {
        "key": "login-packet", "name": "Login red packet",
        "discount": {"kind": "random", "min_amount": 100, "max_amount": 800, "threshold": 10_000},
        "random_decay": {"new_customers": [1, 0.8, 0.5], "returning_customers": [0.6, 0.3]},
        "claim_from": (now - timedelta(days=1)).isoformat(), "claim_until": now.isoformat(),
        "validity": {"days_after_claim": 3}, "stock": 1_000, "per_customer_limit": 5,
        "in_claim_centre": False,
    }  # fmt: skip
    body = {"name": "Login red packets", "budget_id": budget["id"], "batches": [packet]}
    campaign = post("/campaigns", body, "demo-drops-campaign")
    for step in ("submit", "approve", "start"):
        done = post(f"/campaigns/{campaign['id']}/{step}", None, f"demo-drops-{step}")
    post("/drop-rules", {
        "name": "Login red packet", "trigger": "login",
        "batch_id": done["batch_ids"]["login-packet"], "probability_percent": 30,
        "max_per_day": 1, "active_from": now.isoformat(),
        "active_until": (now + timedelta(days=30)).isoformat(),
    }, "demo-drops-rule")  # fmt: skip

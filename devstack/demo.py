"""The demo tenant `make up` loads through the gateway, as a client would."""

from __future__ import annotations

import sys
import time

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
    .devstack between runs). Each call carries an Idempotency-Key, so a retry is safe."""
    headers = {"X-Tenant-Id": DEMO_TENANT}
    existing = client.get("/api/v1/customer/customers", params={"limit": 1}, headers=headers)
    existing.raise_for_status()
    if existing.json()["items"]:
        return 0
    for i, (name, channel) in enumerate(DEMO_CUSTOMERS):
        response = client.post(
            "/api/v1/customer/customers",
            json={"display_name": name, "source_channel": channel},
            headers={**headers, "Idempotency-Key": f"demo-customer-{i:04d}"},
        )
        response.raise_for_status()
    return len(DEMO_CUSTOMERS)


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

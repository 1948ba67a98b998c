"""Calls to other services over HTTP: segment members (tagging) and contacts and consent
(customer). Reach never reads their collections."""

from __future__ import annotations

import httpx

from servicekit import peers
from servicekit.peers import Peer, PeerUnavailable

#: Who reach says it is: a service allowed to see contacts (the customer service masks them
#: for callers without this role).
ACTOR_HEADERS = {"X-Actor-Id": "reach", "X-Actor-Kind": "service", "X-Actor-Roles": "pii_viewer"}


class SegmentMembers(peers.SegmentMembers):
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        super().__init__(http, base_url, caller=ACTOR_HEADERS)


class CustomerContacts:
    """A customer's contact for a provider, asked of the customer service when needed (events
    never carry personal data); reach keeps no copy."""

    FIELDS = {"mobile": "mobile", "email": "email"}
    IDENTITIES = {"openid": "mini_program_openid", "union_id": "union_id"}

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http, self.base_url = http, base_url.rstrip("/")
        self.customers = Peer(http, base_url, name="customer", caller=ACTOR_HEADERS)

    async def resolve(self, tenant: str, customer_id: str, kind: str) -> str | None:
        try:
            response = await self.customers.get(f"/customers/{customer_id}", tenant)
        except PeerUnavailable:
            return None
        if response.status_code != 200:
            return None
        customer = response.json()
        if kind in self.FIELDS:
            return customer.get(self.FIELDS[kind])
        wanted = self.IDENTITIES.get(kind)
        return next(
            (i["value"] for i in customer.get("identities", []) if i["kind"] == wanted), None
        )

    async def withdraw(
        self, tenant: str, customer_id: str, channel: str, purpose: str, source: str
    ) -> bool:
        """Record the withdrawal with the customer service (the owner of consent)."""
        url = f"{self.base_url}/customers/{customer_id}/consents/{channel}/{purpose}"
        headers = {"X-Tenant-Id": tenant, **ACTOR_HEADERS}
        try:
            response = await self.http.put(
                url, json={"granted": False, "source": source}, headers=headers
            )
        except httpx.TransportError:
            return False
        return response.status_code in (200, 201, 404)

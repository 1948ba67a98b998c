"""Calls to other services over HTTP: segment members (tagging) and contacts and consent
(customer). Reach never reads their collections."""

from __future__ import annotations

import httpx

from servicekit.errors import NotFound
from servicekit.peers import Peer, PeerUnavailable

#: Who reach says it is: a service allowed to see contacts (the customer service masks them
#: for callers without this role).
ACTOR_HEADERS = {"X-Actor-Id": "reach", "X-Actor-Kind": "service", "X-Actor-Roles": "pii_viewer"}


class SegmentMembers:
    """Pages of a segment's members from the tagging service, live or a frozen snapshot."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.tagging = Peer(http, base_url, name="tagging", caller=ACTOR_HEADERS)

    async def page(
        self, tenant: str, segment_id: str, snapshot_id: str | None, cursor: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        path = f"/segments/{segment_id}/members"
        if snapshot_id:
            path = f"/segments/{segment_id}/snapshots/{snapshot_id}/members"
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await self.tagging.get(path, tenant, params)
        if response.status_code == 404:
            raise NotFound(
                f"no segment {segment_id} (or snapshot) in the tagging service",
                code="segment_not_found",
            )
        if response.status_code != 200:
            raise self.tagging.unavailable(f"answered {response.status_code}")
        body = response.json()
        ids = [i if isinstance(i, str) else i["customer_id"] for i in body["items"]]
        return ids, body.get("next_cursor")


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

"""Segment members from the tagging service over HTTP: the coupon service never reads
tagging's collections."""

from __future__ import annotations

import httpx

from servicekit.errors import NotFound
from servicekit.peers import Peer

#: Who the coupon service says it is to the services it calls.
CALLER = {"X-Actor-Id": "coupon", "X-Actor-Kind": "service"}


class SegmentMembers:
    """Pages of a segment's members in customer id order, live or a frozen snapshot."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.tagging = Peer(http, base_url, name="tagging", caller=CALLER)

    async def page(
        self, tenant: str, segment_id: str, snapshot_id: str | None, cursor: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        """One page of member ids and the cursor after it (None: the last page)."""
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

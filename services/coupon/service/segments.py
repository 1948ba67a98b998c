"""Segment members from the tagging service over HTTP (the shape of reach's peer client):
the coupon service never reads tagging's collections."""

from __future__ import annotations

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from servicekit.errors import DomainError, NotFound

#: Who the coupon service says it is to the tagging service.
ACTOR_HEADERS = {"X-Actor-Id": "coupon", "X-Actor-Kind": "service"}


class TaggingUnavailable(DomainError):
    status = 503
    title = "The tagging service is unavailable"


class SegmentMembers:
    """Pages of a segment's members in customer id order, live or a frozen snapshot."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http, self.base_url = http, base_url.rstrip("/")

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
        try:
            response = await self._get(self.base_url + path, tenant, params)
        except httpx.TransportError as exc:
            raise TaggingUnavailable(
                f"the tagging service cannot be reached: {type(exc).__name__}",
                code="tagging_unavailable",
            ) from exc
        if response.status_code == 404:
            raise NotFound(
                f"no segment {segment_id} (or snapshot) in the tagging service",
                code="segment_not_found",
            )
        if response.status_code != 200:
            raise TaggingUnavailable(
                f"the tagging service answered {response.status_code}", code="tagging_unavailable"
            )
        body = response.json()
        ids = [i if isinstance(i, str) else i["customer_id"] for i in body["items"]]
        return ids, body.get("next_cursor")

    async def _get(self, url: str, tenant: str, params: dict[str, str | int]) -> httpx.Response:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(httpx.TransportError),
            stop=stop_after_attempt(3),
            wait=wait_exponential_jitter(multiplier=0.2, max=2),
            reraise=True,
        ):
            with attempt:
                return await self.http.get(
                    url, params=params, headers={"X-Tenant-Id": tenant, **ACTOR_HEADERS}
                )
        raise AssertionError("unreachable")

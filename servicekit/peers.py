"""Calling another service over HTTP as every service does: the tenant and the caller's
identity in headers, transport faults retried with jittered backoff, and one 503 problem
naming the peer when it cannot answer. Services never read each other's collections."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from servicekit.errors import DomainError, NotFound
from servicekit.headers import TENANT_HEADER

Params = Mapping[str, str | int]


class PeerUnavailable(DomainError):
    status = 503
    title = "A service this one depends on is unavailable"


class Peer:
    """Another service at `base_url`, called as `caller` (actor headers: id, kind, roles)."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, *, name: str, caller: Mapping[str, str]
    ) -> None:
        self.http, self.base_url, self.name = http, base_url.rstrip("/"), name
        self.caller = dict(caller)

    async def get(self, path: str, tenant: str, params: Params | None = None) -> httpx.Response:
        """The peer's answer, whatever its status; PeerUnavailable when three attempts
        could not reach it."""
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(httpx.TransportError),
                stop=stop_after_attempt(3),
                wait=wait_exponential_jitter(multiplier=0.2, max=2),
                reraise=True,
            ):
                with attempt:
                    return await self.http.get(
                        self.base_url + path,
                        params=params,
                        headers={TENANT_HEADER: tenant, **self.caller},
                    )
        except httpx.TransportError as exc:
            raise self.unavailable(f"cannot be reached: {type(exc).__name__}") from exc
        raise AssertionError("unreachable")

    def unavailable(self, why: str) -> PeerUnavailable:
        return PeerUnavailable(f"the {self.name} service {why}", code=f"{self.name}_unavailable")


class SegmentMembers:
    """Pages of a segment's members from the tagging service, in customer id order, live or
    from a frozen snapshot: the published members API that campaigns and targeted issues
    page through."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, *, caller: Mapping[str, str]):
        self.tagging = Peer(http, base_url, name="tagging", caller=caller)

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

"""The coupon service's grant API, as agreed:

    POST {base}/batches/{batch_id}/grants   (X-Tenant-Id, Idempotency-Key)
    {"customer_id", "channel": "points_exchange", "reference"}
    -> 201 {"coupon_id", "batch_id", "customer_id", "state", ...}

The same reference returns the same coupon, so a call is retried (transport errors only:
a connection refused or reset, a timeout) with the same reference and key. A 409 or 422
(or a 404: no such batch) is a definite refusal (problem+json with a `code`); anything else
(a 5xx, a 429) leaves the outcome unknown."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

CHANNEL = "points_exchange"


@dataclass(frozen=True)
class GrantedCoupon:
    coupon_id: str
    batch_id: str
    customer_id: str
    state: str


class CouponRefused(Exception):
    """The coupon service said no, for good (out of stock, batch not active, a limit)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


class CouponUnavailable(Exception):
    """No definite answer: the coupon may or may not have been granted; ask again later
    with the same reference."""


class CouponClient:
    def __init__(self, base_url: str, *, timeout_seconds: float = 5.0, attempts: int = 3) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout_seconds)
        self.attempts = attempts

    async def close(self) -> None:
        await self.http.aclose()

    async def grant(
        self, tenant: str, *, batch_id: str, customer_id: str, reference: str
    ) -> GrantedCoupon:
        try:
            response = await self._post(tenant, batch_id, customer_id, reference)
        except httpx.TransportError as exc:
            raise CouponUnavailable(f"coupon service unreachable: {exc!r}") from exc
        if response.status_code in (200, 201):
            body = response.json()
            return GrantedCoupon(
                # The agreed contract names it `coupon_id`; the coupon service answers its
                # Coupon document, where it is `id`: either is accepted.
                coupon_id=str(body.get("coupon_id") or body["id"]),
                batch_id=str(body.get("batch_id", batch_id)),
                customer_id=str(body.get("customer_id", customer_id)),
                state=str(body.get("state", "")),
            )
        if response.status_code in (404, 409, 422):  # no such batch, or a rule said no
            problem = _problem(response)
            raise CouponRefused(
                response.status_code,
                str(problem.get("code", "refused")),
                str(problem.get("detail", "")),
            )
        raise CouponUnavailable(f"coupon service answered {response.status_code}")

    async def _post(
        self, tenant: str, batch_id: str, customer_id: str, reference: str
    ) -> httpx.Response:
        body = {"customer_id": customer_id, "channel": CHANNEL, "reference": reference}
        headers = {"X-Tenant-Id": tenant, "Idempotency-Key": reference}
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(httpx.TransportError),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(multiplier=0.05, max=1.0),
            reraise=True,
        ):
            with attempt:
                return await self.http.post(
                    f"/batches/{batch_id}/grants", json=body, headers=headers
                )
        raise AssertionError("unreachable: tenacity re-raises the last error")


def _problem(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}

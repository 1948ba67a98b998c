"""A stand-in for the coupon service's grant API, on a real socket, implementing the agreed
contract: `POST /batches/{batch_id}/grants` with X-Tenant-Id and Idempotency-Key, body
{customer_id, channel, reference} -> 201 {coupon_id, batch_id, customer_id, state}; the same
reference returns the same coupon; refusals are 409/422 problem+json with a `code`.

Batches behave by name: `sold-out-*` answers 409 `batch_out_of_stock`, `closed-*` 422
`batch_not_active`, `slow-*` takes longer than the caller's timeout on the first call for a
reference (after making the coupon: the caller's retry must get the same one)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse


@dataclass
class CouponStandIn:
    url: str = ""
    slow_seconds: float = 3.0
    #: Coupons granted, by (tenant, reference).
    granted: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/batches/{batch_id}/grants")
        async def grant(
            batch_id: str,
            request: Request,
            x_tenant_id: str = Header(),
            idempotency_key: str = Header(),
        ) -> JSONResponse:
            body = await request.json()
            self.calls.append({"batch_id": batch_id, "key": idempotency_key, **body})
            return await self._answer(x_tenant_id, batch_id, body)

        return app

    async def _answer(self, tenant: str, batch_id: str, body: dict[str, Any]) -> JSONResponse:
        if body.get("channel") != "points_exchange":
            return _problem(422, "channel_not_allowed")
        if batch_id.startswith("sold-out"):
            return _problem(409, "batch_out_of_stock")
        if batch_id.startswith("closed"):
            return _problem(422, "batch_not_active")
        known = self.granted.get((tenant, body["reference"]))
        if known is None:
            known = {
                "coupon_id": f"cpn_{uuid.uuid4().hex[:12]}",
                "batch_id": batch_id,
                "customer_id": body["customer_id"],
                "state": "claimed",
            }
            self.granted[(tenant, body["reference"])] = known
            if batch_id.startswith("slow"):
                await asyncio.sleep(self.slow_seconds)
        return JSONResponse(known, status_code=201)

    def coupons_for(self, tenant: str) -> list[dict[str, Any]]:
        return [c for (t, _), c in self.granted.items() if t == tenant]


def _problem(status: int, code: str) -> JSONResponse:
    body = {"type": "about:blank", "title": "refused", "status": status, "code": code}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")

"""Usage reported back to partners by signed webhooks, with retries.

Deliveries are recorded in the transaction of what they report (see
`store/partner_webhooks.py`). A sender worker takes due ones and POSTs each to the
partner's webhook address as JSON, signed:

    X-Webhook-Id: <delivery id>          (the partner's key for deduplication)
    X-Webhook-Timestamp: <Unix seconds>
    X-Webhook-Signature: v1=hex(HMAC-SHA256(secret, timestamp + "." + body))

A 2xx answer delivers it; anything else (or no answer) is retried with exponential backoff
(tenacity) until `partner_webhook_attempts` are spent, then it is marked failed, listed,
and can be replayed by staff. The delivery is leased for the whole retry schedule, so a
sender that dies mid-way is taken over after it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timedelta

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from contracts.coupon import CouponRedeemed
from servicekit.clock import utcnow
from servicekit.runtime import Runtime
from services.coupon.domain.coupons import Coupon
from services.coupon.domain.partners import (
    WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
    DeliveryState,
    PartnerCoupon,
    webhook_secret,
    webhook_signature,
)
from services.coupon.settings import CouponSettings
from services.coupon.store.coupons import key
from services.coupon.store.partner_webhooks import Delivery, DeliveryStore
from services.coupon.store.partners import PartnerStore

log = logging.getLogger("services.coupon.partner_webhooks")
PARTNER_PREFIX = "partner:"
#: Deliveries one replica sends at once (a slow partner does not hold up the others).
IN_FLIGHT = 16
HTTP = "partner_http"


def http_client(runtime: Runtime) -> httpx.AsyncClient:
    """One client per replica for partners' webhooks and the customer service (closed by
    the sender worker when the replica stops)."""
    client = runtime.state.get(HTTP)
    if client is None:
        client = httpx.AsyncClient(timeout=10.0, trust_env=False)
        runtime.state[HTTP] = client
    return client


async def send_webhooks(runtime: Runtime) -> None:
    """The sender worker."""
    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    http = http_client(runtime)
    try:
        await WebhookSender(runtime, settings, http).run()
    finally:
        runtime.state.pop(HTTP, None)
        await http.aclose()


class DeliveryFailed(Exception):
    pass


def offer_given(give: PartnerCoupon) -> Delivery:
    return Delivery(
        id=f"whd_{key(give.tenant, 'given', give.id)}",
        tenant=give.tenant,
        partner_id=give.partner_id,
        type="partner_offer.given",
        data={
            "offer_id": give.offer_id,
            "number": give.number,
            "code": give.code,
            "given_at": give.given_at.isoformat(),
        },
        next_at=give.given_at,
        created_at=give.given_at,
    )


def coupon_redeemed(
    tenant: str, event_id: str, event: CouponRedeemed, coupon: Coupon
) -> Delivery | None:
    """A delivery for a coupon the partner issued or whose code it handed out; None for
    every other coupon."""
    if not coupon.channel.startswith(PARTNER_PREFIX):
        return None
    partner_id = coupon.channel.removeprefix(PARTNER_PREFIX)
    reference = coupon.reference or ""
    direct = reference.startswith(coupon.channel + ":")
    data = {
        "coupon_id": coupon.id,
        "batch_id": coupon.batch_id,
        "via": "direct_issue" if direct else "code",
        # The partner's own reference of a direct issue, or the id of the code it took.
        "reference": reference.removeprefix(coupon.channel + ":") if direct else None,
        "code_id": None if direct else reference,
        "discount": event.discount,
        "redeemed_at": event.redeemed_at.isoformat(),
    }
    now = utcnow()
    return Delivery(
        id=f"whd_{key(tenant, 'event', event_id)}",
        tenant=tenant,
        partner_id=partner_id,
        type="coupon.redeemed",
        data=data,
        next_at=now,
        created_at=now,
    )


def body_of(delivery: Delivery) -> bytes:
    payload = {
        "id": delivery.id,
        "type": delivery.type,
        "partner_id": delivery.partner_id,
        "created_at": delivery.created_at.isoformat(),
        "data": delivery.data,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


class WebhookSender:
    def __init__(self, runtime: Runtime, settings: CouponSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self.deliveries = DeliveryStore(runtime.db)
        self.partners = PartnerStore(runtime.db)

    def lease(self, attempts_left: int) -> timedelta:
        """Long enough for every attempt left and the waits between them."""
        s = self.settings
        waits = sum(
            min(s.partner_webhook_max_backoff_seconds, s.partner_webhook_backoff_seconds * 2**n)
            for n in range(attempts_left)
        )
        return timedelta(seconds=waits + attempts_left * s.partner_webhook_timeout_seconds + 30)

    async def run(self) -> None:
        gate = asyncio.Semaphore(IN_FLIGHT)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                await gate.acquire()
                delivery = await self._take()
                if delivery is None:
                    gate.release()
                    await asyncio.sleep(self.settings.partner_webhook_poll_seconds)
                    continue
                task = asyncio.create_task(self._send_released(delivery, gate))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()

    async def _take(self) -> Delivery | None:
        try:
            return await self.deliveries.take_due(
                utcnow(), self.lease(self.settings.partner_webhook_attempts)
            )
        except Exception:
            log.exception("taking a webhook delivery failed; the next round retries")
            return None

    async def _send_released(self, delivery: Delivery, gate: asyncio.Semaphore) -> None:
        try:
            await self.send(delivery)
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", delivery.id)
        finally:
            gate.release()

    async def send(self, delivery: Delivery) -> None:
        s = self.settings
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, s.partner_webhook_attempts - delivery.attempts)),
            wait=wait_exponential(
                multiplier=s.partner_webhook_backoff_seconds,
                max=s.partner_webhook_max_backoff_seconds,
            ),
            retry=retry_if_exception_type(DeliveryFailed),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._attempt(delivery)
        except DeliveryFailed:
            await self.deliveries.settle(delivery.id, DeliveryState.FAILED, utcnow())
            return
        await self.deliveries.settle(delivery.id, DeliveryState.DELIVERED, utcnow())

    async def _attempt(self, delivery: Delivery) -> None:
        error = await self._post(delivery)
        await self.deliveries.attempted(delivery.id, error)
        if error is not None:
            raise DeliveryFailed(error)

    async def _post(self, delivery: Delivery) -> str | None:
        """None when the partner took it, else why not."""
        profile = await self.partners.profile(delivery.tenant, delivery.partner_id)
        url = profile.get("webhook_url")
        if not url:
            return "the partner has no webhook address"
        secret = webhook_secret(
            self.settings.secret_key, delivery.tenant, delivery.partner_id,
            int(profile.get("secret_version", 1)),
        )  # fmt: skip
        body = body_of(delivery)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            WEBHOOK_ID_HEADER: delivery.id,
            WEBHOOK_TIMESTAMP_HEADER: timestamp,
            WEBHOOK_SIGNATURE_HEADER: webhook_signature(secret, timestamp, body),
        }
        try:
            response = await self.http.post(
                url,
                content=body,
                headers=headers,
                timeout=self.settings.partner_webhook_timeout_seconds,
            )
        except httpx.HTTPError as exc:
            return f"no answer: {type(exc).__name__}"
        if 200 <= response.status_code < 300:
            return None
        return f"answered {response.status_code}"

"""Coupons about to expire (即将过期提醒): a worker finds available coupons whose validity
ends within the notice window and publishes `coupon.expiry_noticed.v1` for each, exactly
once (reach reminds the customer).

Exactly once: a batch of coupons is marked `expiry_noticed_at` by one conditional update
in the same transaction that emits their events, so a coupon is either marked and
announced or neither; a marked coupon is never picked again, and a coupon used or revoked
meanwhile no longer matches (the transaction conflicts and is retried). One replica sweeps
at a time, holding a lease it renews each round; another takes over when it lapses. Only
coupons stored `available` are noticed: one locked at checkout is being used."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import datetime, timedelta

from contracts.coupon import CouponExpiryNoticed
from servicekit.clock import utcnow
from servicekit.mongo import Document
from servicekit.runtime import Runtime
from servicekit.unit_of_work import Tx, UnitOfWork
from services.coupon.settings import CouponSettings
from services.coupon.store.expiry_notices import ExpiryNoticeStore

log = logging.getLogger("services.coupon.expiry_notices")


class Raced(Exception):
    """A coupon of the batch changed between the read and the mark: read again."""


def _notice(doc: Document, now: datetime) -> CouponExpiryNoticed:
    return CouponExpiryNoticed(
        coupon_id=doc["_id"],
        batch_id=doc["batch_id"],
        campaign_id=doc["campaign_id"],
        customer_id=doc["customer_id"],
        face_value=doc["face_value"],
        valid_until=doc["valid_until"],
        noticed_at=now,
    )


async def notice_batch(uow: UnitOfWork, now: datetime, window: timedelta, limit: int) -> int:
    """Mark and announce up to `limit` coupons due a notice, in one transaction; how many."""
    store = ExpiryNoticeStore(uow.db)

    async def work(tx: Tx) -> int:
        docs = await store.due(now, window, limit, tx.session)
        if not docs:
            return 0
        if await store.mark([d["_id"] for d in docs], now, window, tx.session) != len(docs):
            raise Raced
        for doc in docs:
            await tx.emit(_notice(doc, now), tenant=doc["tenant"])
        return len(docs)

    return await uow.run(work)


async def notice_due(uow: UnitOfWork, now: datetime, window: timedelta, batch: int) -> int:
    """Every coupon due a notice as of `now`, a batch per transaction; how many."""
    total = 0
    while True:
        try:
            done = await notice_batch(uow, now, window, batch)
        except Raced:
            continue
        total += done
        if done < batch:
            return total


async def run(runtime: Runtime) -> None:
    """The worker: a sweep every `expiry_notice_sweep_seconds` while this replica holds
    the lease (three rounds long, so one slow round does not hand it over)."""
    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    store = ExpiryNoticeStore(runtime.db)
    owner = f"{socket.gethostname()}:{id(runtime):x}"
    every = settings.expiry_notice_sweep_seconds
    window = timedelta(hours=settings.expiry_notice_hours)
    while True:
        try:
            if await store.hold_lease(owner, utcnow(), timedelta(seconds=3 * every + 5)):
                await notice_due(runtime.uow, utcnow(), window, settings.expiry_notice_batch)
        except Exception:
            log.exception("expiry notice sweep failed; the next round retries")
        await asyncio.sleep(every)

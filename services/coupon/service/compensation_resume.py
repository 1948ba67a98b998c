"""The worker that finishes compensations left `issuing` by a replica that stopped between
counting one and issuing its coupon (the grant is idempotent by the compensation's id, so
finishing twice gives one coupon), and deletes tallies of periods long over."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from servicekit.clock import utcnow
from servicekit.runtime import Runtime
from services.coupon.service.compensation import compensations_on
from services.coupon.settings import CouponSettings

log = logging.getLogger("services.coupon.compensation")


async def resume_compensations(runtime: Runtime) -> None:
    # Imported here: parts lists this worker, and builds the claim desk it issues through.
    from services.coupon.service import parts

    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    while True:
        try:
            desk = runtime.state.get(parts.DESK) or parts.install(runtime)
            before = utcnow() - timedelta(seconds=settings.compensation_stall_seconds)
            service = compensations_on(runtime, desk)
            await service.resume_stalled(before)
            await service.store.sweep_tallies(utcnow())
        except Exception:
            log.exception("resuming stalled compensations failed; the next round retries")
        await asyncio.sleep(settings.compensation_resume_seconds)

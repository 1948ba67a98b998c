"""What the channels part (claim centre, on-site drops, targeted issues) builds once per
replica and keeps in `runtime.state`, beside the claim desk it issues through."""

from __future__ import annotations

import httpx

from servicekit.runtime import Runtime
from services.coupon.service import parts
from services.coupon.service.claim_centre import ClaimCentre
from services.coupon.service.claims import ClaimDesk
from services.coupon.service.drops import Drops
from services.coupon.service.holdings import Holdings
from services.coupon.service.segments import SegmentMembers
from services.coupon.settings import CouponSettings
from services.coupon.store.claim_centre import ClaimCentreStore
from services.coupon.store.drops import DropStore
from services.coupon.store.holdings import HoldingsStore

CLAIM_CENTRE, DROPS, MEMBERS, HOLDINGS = "claim_centre", "drops", "segment_members", "holdings"


def settings_of(runtime: Runtime) -> CouponSettings:
    settings = runtime.settings
    assert isinstance(settings, CouponSettings)
    return settings


def desk(runtime: Runtime) -> ClaimDesk:
    return runtime.state.get(parts.DESK) or parts.install(runtime)


def holdings(runtime: Runtime) -> Holdings:
    """Customers' holdings, read together for the claim centre and drop checks."""
    found = runtime.state.get(HOLDINGS)
    if found is None:
        found = runtime.state[HOLDINGS] = Holdings(HoldingsStore(runtime.db))
    return found


def claim_centre(runtime: Runtime) -> ClaimCentre:
    found = runtime.state.get(CLAIM_CENTRE)
    if found is None:
        ttl = settings_of(runtime).claim_centre_cache_seconds
        store = ClaimCentreStore(runtime.db)
        centre = ClaimCentre(desk(runtime), store, holdings(runtime), ttl)
        found = runtime.state[CLAIM_CENTRE] = centre
    return found


def drops(runtime: Runtime) -> Drops:
    found = runtime.state.get(DROPS)
    if found is None:
        ttl = settings_of(runtime).drop_rules_cache_seconds
        claim_desk = desk(runtime)  # installs the rate limiter with it
        limiter = runtime.state[parts.LIMITER]
        store = DropStore(runtime.db)
        found = Drops(claim_desk, store, holdings(runtime), limiter, ttl)
        runtime.state[DROPS] = found
    return found


def segment_members(runtime: Runtime) -> SegmentMembers:
    """The tagging service's client: one HTTP pool per replica, closed by `close`."""
    found = runtime.state.get(MEMBERS)
    if found is None:
        settings = settings_of(runtime)
        timeout = settings.tagging_timeout_seconds
        http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)))
        found = runtime.state[MEMBERS] = SegmentMembers(http, settings.tagging_base_url)
    return found


async def close(runtime: Runtime) -> None:
    """Close what this part holds: the tagging pool, the holdings' read batcher."""
    members = runtime.state.pop(MEMBERS, None)
    if members is not None:
        await members.http.aclose()
    reads = runtime.state.pop(HOLDINGS, None)
    if reads is not None:
        await reads.stop()

"""Redeem codes (兑换码): making lots of them, and a customer exchanging one for a coupon.

A lot is made in one request: codes are drawn from the OS's randomness in chunks (off the
event loop), each chunk's digests written with one `insert_many`, and the plain codes are
answered once (streamed out chunk by chunk as CSV) and kept nowhere. A redemption
1. refuses a mistyped code (check symbol) without asking the store;
2. refuses a customer who has failed too often in the current window (429), reading the
   window while it
3. looks the code up by its digest; then takes it with one conditional update, so two
   customers racing for one code cannot both have it;
4. issues through the claim desk with the code as the grant reference (channel
   `redeem_code`, or `partner:<id>` for a partner's codes): stock, limits and idempotency
   are the desk's, so the same customer sending the code again gets the same coupon.
An unknown code and a code someone else used get the same answer, at the same cost (one
window read, one code read, one counted failure), so answers reveal nothing. A free code of
a voided lot is answered the same way; a code already redeemed stays its customer's."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import NoReturn

from servicekit.clock import utcnow
from servicekit.errors import Conflict, InvalidInput
from servicekit.runtime import Runtime
from services.coupon.domain.codes import MistypedCode, code_key, digest, new_code, normalize
from services.coupon.domain.rate_limits import Limit, Verdict
from services.coupon.service.claims import ClaimDesk, Claimed, ClaimRefused, ClaimRequest
from services.coupon.service.rate_limits import RateLimited, RateLimiter
from services.coupon.settings import CouponSettings
from services.coupon.store.codes import CodeLot, CodeStore, RedeemCode

REDEEM_CHANNEL = "redeem_code"
#: A voided lot is refused on every replica within this long.
LOT_CACHE, LOT_CACHE_SECONDS, LOT_CACHE_SIZE = "code_lots_seen", 2.0, 10_000


class CodeNotRedeemable(Conflict):
    """One answer for a code that does not exist and one somebody else used."""

    def __init__(self) -> None:
        super().__init__(
            "this code cannot be redeemed: check it, or it has been used",
            code="code_not_redeemable",
        )


def partner_channel(partner_id: str) -> str:
    return f"partner:{partner_id}"


def mint(key: bytes, tenant: str, count: int) -> tuple[list[str], list[str]]:
    """`count` fresh codes and their digests (CPU work: run off the event loop)."""
    codes = [new_code() for _ in range(count)]
    return codes, [digest(key, tenant, c) for c in codes]


@dataclass
class Minted:
    lot: CodeLot
    codes: list[str]


class CodeDesk:
    def __init__(
        self, runtime: Runtime, settings: CouponSettings, desk: ClaimDesk, limiter: RateLimiter
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.desk = desk
        self.limiter = limiter
        self.store = CodeStore(runtime.db)
        self.key = code_key(settings.secret_key)

    # ------------------------------------------------------------------ making

    async def start_lot(
        self, tenant: str, batch_id: str, count: int, *, by: str
    ) -> tuple[CodeLot, AsyncIterator[list[str]]]:
        """Record the lot, and the codes to come: each chunk is yielded once its digests
        are written, so a caller can stream them out as they are made."""
        await self.desk.batch(tenant, batch_id)  # 404 for an unknown batch
        lot = new_lot(tenant, batch_id, count, by=by)
        await self.store.add_lot(lot)
        return lot, self._fill(lot)

    async def _fill(self, lot: CodeLot) -> AsyncIterator[list[str]]:
        chunk = self.settings.code_insert_chunk
        for first in range(0, lot.count, chunk):
            plain, digests = await asyncio.to_thread(
                mint, self.key, lot.tenant, min(chunk, lot.count - first)
            )
            await self.store.add_codes(lot, digests, first + 1, None)
            yield plain

    async def make_lot(self, tenant: str, batch_id: str, count: int, *, by: str) -> Minted:
        """A lot of `count` codes of the batch, all at once."""
        lot, chunks = await self.start_lot(tenant, batch_id, count, by=by)
        return Minted(lot, [code async for chunk in chunks for code in chunk])

    # -------------------------------------------------------------- redeeming

    async def redeem(self, tenant: str, customer_id: str, raw: str) -> Claimed:
        try:
            code = normalize(raw)
        except MistypedCode:
            raise InvalidInput(
                "not a code: a symbol is wrong or missing (codes have 15 letters and digits)",
                field="code",
                code="code_mistyped",
            ) from None
        limit = self._failure_limit(customer_id)
        key = digest(self.key, tenant, code)
        # The window and the code are read together; a guesser over the limit is refused
        # whatever the code, so a lucky guess past the limit is never confirmed.
        _, stored = await asyncio.gather(
            self._refuse_guessers(tenant, limit), self.store.get(tenant, key)
        )
        if stored is not None and stored.customer_id is None and await self._voided(stored):
            stored = None  # as if it did not exist
        found = await self._take(tenant, key, customer_id, stored)
        if found is None:
            await self._failed(tenant, limit)
        return await self._issue(tenant, customer_id, found)

    async def _take(
        self, tenant: str, key: str, customer_id: str, found: RedeemCode | None
    ) -> RedeemCode | None:
        """The code (`found` as read), taken by this customer now or before; None when it
        does not exist or another customer has it."""
        if found is None or found.customer_id == customer_id:
            return found
        if found.customer_id is not None:
            return None
        now = utcnow()
        if await self.store.take(tenant, key, customer_id, now):
            return found.model_copy(update={"customer_id": customer_id, "taken_at": now})
        again = await self.store.get(tenant, key)  # lost a race: to whom?
        return again if again is not None and again.customer_id == customer_id else None

    async def _issue(self, tenant: str, customer_id: str, code: RedeemCode) -> Claimed:
        channel = partner_channel(code.partner_id) if code.partner_id else REDEEM_CHANNEL
        request = ClaimRequest(customer_id, channel, code.code_id)
        batch = await self.desk.batch(tenant, code.batch_id)
        try:
            claimed = await self.desk.issue(tenant, batch, request, check_window=True)
        except ClaimRefused:
            if code.coupon_id is None:
                await self.store.give_back(tenant, code.digest, customer_id)
            raise
        if code.coupon_id is None:
            await self.store.issued(tenant, code.digest, claimed.coupon.id)
        return claimed

    async def void(self, tenant: str, lot_id: str, *, by: str) -> None:
        """Void the lot: at once on this replica, within `LOT_CACHE_SECONDS` on others."""
        await self.store.void(tenant, lot_id, by, utcnow())
        self.runtime.state.get(LOT_CACHE, {}).pop(lot_id, None)

    async def _voided(self, code: RedeemCode) -> bool:
        """Whether the code's lot is void, as read at most `LOT_CACHE_SECONDS` ago by this
        replica (lots are read once per period, not once per redemption)."""
        cache: dict[str, tuple[float, bool]] = self.runtime.state.setdefault(LOT_CACHE, {})
        seen = cache.get(code.lot_id)
        if seen is not None and time.monotonic() - seen[0] < LOT_CACHE_SECONDS:
            return seen[1]
        lot = await self.store.lot(code.tenant, code.lot_id)
        voided = lot is None or lot.voided_at is not None
        if len(cache) > LOT_CACHE_SIZE:
            cache.clear()
        cache[code.lot_id] = (time.monotonic(), voided)
        return voided

    def _failure_limit(self, customer_id: str) -> Limit:
        s = self.settings
        return Limit(
            "code_failures", customer_id, s.code_failures_per_window, s.code_failure_window_seconds
        )

    async def _refuse_guessers(self, tenant: str, limit: Limit) -> None:
        if limit.limit <= 0:
            return
        now = utcnow()
        if await self.store.window_count(limit.counter_id(tenant, now)) >= limit.limit:
            raise RateLimited(Verdict(False, limit, limit.retry_after(now)))

    async def _failed(self, tenant: str, limit: Limit) -> NoReturn:
        """Count the failure (429 once over the limit), then the one generic refusal."""
        await self.limiter.check(tenant, [limit])
        raise CodeNotRedeemable()


def new_lot(
    tenant: str, batch_id: str, count: int, *, by: str, partner_id: str | None = None
) -> CodeLot:
    return CodeLot(
        id=f"lot_{secrets.token_hex(8)}",
        tenant=tenant,
        batch_id=batch_id,
        count=count,
        partner_id=partner_id,
        created_by=by,
        created_at=utcnow(),
    )

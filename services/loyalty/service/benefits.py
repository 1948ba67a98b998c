"""Benefit use cases: definitions, direct grants, card purchase and renewal, what a
customer holds (by tier, card or grant), write-offs and their reversal.

Idempotency: a direct grant and a write-off by the request's key, a card purchase or
renewal by its payment id; the same again answers with what the first did."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts.loyalty import (
    BenefitCardExpired,
    BenefitCardPurchased,
    BenefitCardRenewed,
    BenefitUsed,
    BenefitUseReversed,
)
from servicekit.clock import utcnow
from servicekit.errors import Conflict, DomainError, NotFound
from servicekit.unit_of_work import Tx, UnitOfWork
from services.loyalty.domain import benefits as rules
from services.loyalty.domain.benefits import (
    Benefit,
    BenefitCard,
    BenefitKind,
    CardHolding,
    Grant,
    WriteOff,
)
from services.loyalty.domain.tiers import MemberTier, TierScheme
from services.loyalty.domain.values import new_id
from services.loyalty.store.benefits import DefinitionStore, GrantStore, HoldingStore
from services.loyalty.store.races import settle
from services.loyalty.store.schemes import SchemeStore
from services.loyalty.store.tiers import MemberTierStore


@dataclass(frozen=True)
class Holdings:
    """What a customer holds: grants (direct and by card), cards, and their tier's benefits."""

    grants: list[Grant]
    cards: list[CardHolding]
    tier_benefits: list[Benefit]


@dataclass(frozen=True)
class Done:
    """The outcome of a request, and whether it is a repeat of an earlier one."""

    value: object
    repeated: bool = False


class BenefitService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.definitions = DefinitionStore(uow.db)
        self.grants = GrantStore(uow.db)
        self.card_holdings = HoldingStore(uow.db)

    # ----------------------------------------------------------------- definitions

    async def define_benefit(self, tenant: str, benefit: Benefit) -> None:
        await self.definitions.put_benefit(tenant, benefit)

    async def define_card(self, tenant: str, card: BenefitCard) -> None:
        known = {b.benefit_id for b in await self.definitions.benefits(tenant)}
        missing = sorted({b.benefit_id for b in card.benefits} - known)
        if missing:
            raise DomainError(
                f"unknown benefits: {', '.join(missing)}", code="benefit_not_found", missing=missing
            )
        await self.definitions.put_card(tenant, card)

    async def benefits(self, tenant: str) -> list[Benefit]:
        return await self.definitions.benefits(tenant)

    async def cards(self, tenant: str) -> list[BenefitCard]:
        return await self.definitions.cards(tenant)

    # -------------------------------------------------------------------- holdings

    async def holdings(self, tenant: str, customer_id: str) -> Holdings:
        member = await MemberTierStore(self.uow.db).get(tenant, customer_id)
        scheme = await SchemeStore(self.uow.db).get(tenant, TierScheme)
        return Holdings(
            grants=await self.grants.for_customer(tenant, customer_id),
            cards=await self.card_holdings.for_customer(tenant, customer_id),
            tier_benefits=await self._tier_benefits(tenant, member, scheme),
        )

    async def _tier_benefits(
        self, tenant: str, member: MemberTier, scheme: TierScheme | None
    ) -> list[Benefit]:
        tier = scheme.tier(member.tier_id) if scheme else None
        return await self.definitions.benefits(tenant, tier.benefits) if tier else []

    async def grant(
        self,
        tenant: str,
        customer_id: str,
        benefit_id: str,
        *,
        uses: int | None,
        valid_days: int | None,
        reason: str,
        operator: str,
        key: str,
    ) -> Done:
        async def work(tx: Tx) -> Done:
            earlier = await self.grants.by_request(tenant, key, session=tx.session)
            if earlier is not None:
                return Done(_same_customer(earlier, customer_id), repeated=True)
            benefit = await self._benefit(tenant, benefit_id, tx)
            grant = rules.direct_grant(
                customer_id,
                benefit,
                uses=uses,
                valid_days=valid_days,
                at=utcnow(),
                reason=reason,
                granted_by=operator,
            )
            await self.grants.add(tenant, [grant], tx.session, request=key)
            return Done(grant)

        return await settle(self.uow, work)

    async def buy_card(self, tenant: str, customer_id: str, card_id: str, payment_id: str) -> Done:
        async def work(tx: Tx) -> Done:
            earlier = await self.card_holdings.by_payment(tenant, payment_id, session=tx.session)
            if earlier is not None:
                return Done(_same_customer(earlier, customer_id), repeated=True)
            card = await self._card(tenant, card_id, tx)
            now = utcnow()
            holding, grants = rules.buy(customer_id, card, payment_id=payment_id, at=now)
            holding = await self.card_holdings.put(tenant, holding, tx.session)
            await self.grants.add(tenant, grants, tx.session)
            await tx.emit(_purchased(holding, card.price, now), tenant=tenant)
            return Done(holding)

        return await settle(self.uow, work)

    async def renew_card(
        self, tenant: str, customer_id: str, holding_id: str, payment_id: str
    ) -> Done:
        async def work(tx: Tx) -> Done:
            earlier = await self.card_holdings.by_payment(tenant, payment_id, session=tx.session)
            if earlier is not None:
                return Done(_same_customer(earlier, customer_id), repeated=True)
            holding = await self.card_holdings.load(tenant, holding_id, session=tx.session)
            if holding is None or holding.customer_id != customer_id:
                raise NotFound(f"no card holding {holding_id}", code="card_holding_not_found")
            card = await self._card(tenant, holding.card_id, tx)
            grants = await self.grants.of_source(tenant, f"card:{holding_id}", tx.session)
            now = utcnow()
            renewed, extended = rules.renew(holding, card, grants, payment_id=payment_id, at=now)
            renewed = await self.card_holdings.put(tenant, renewed, tx.session)
            for grant in extended:
                await self.grants.replace(tenant, grant, tx.session)
            await tx.emit(_renewed(renewed, card.price, now), tenant=tenant)
            return Done(renewed)

        return await settle(self.uow, work)

    async def expire_due(self, now: datetime | None = None, limit: int = 200) -> int:
        """One sweep round: cards past their period are marked expired, and published."""
        now = now or utcnow()
        lapsing = await self.card_holdings.lapsing(now, limit)
        for tenant, holding_id in lapsing:
            await self._lapse(tenant, holding_id, now)
        return len(lapsing)

    async def _lapse(self, tenant: str, holding_id: str, now: datetime) -> None:
        async def work(tx: Tx) -> None:
            holding = await self.card_holdings.load(tenant, holding_id, session=tx.session)
            lapsed = rules.lapse(holding, now) if holding else None
            if lapsed is None:
                return  # renewed meanwhile, or done by another replica
            await self.card_holdings.put(tenant, lapsed, tx.session)
            expired = BenefitCardExpired(
                customer_id=lapsed.customer_id,
                card_id=lapsed.card_id,
                holding_id=lapsed.holding_id,
                expired_at=lapsed.expires_at,
            )
            await tx.emit(expired, tenant=tenant)

        await self.uow.run(work)

    # ------------------------------------------------------------------ write-offs

    async def write_off(
        self,
        tenant: str,
        customer_id: str,
        grant_id: str,
        *,
        uses: int,
        reference: str | None,
        operator: str,
        key: str,
    ) -> Done:
        """Use `uses` of a grant; 409 `benefit_used_up` when fewer are left (or it expired)."""

        async def work(tx: Tx) -> Done:
            earlier = await self.grants.write_off(tenant, key=key, session=tx.session)
            if earlier is not None:
                return Done(_same_customer(earlier, customer_id), repeated=True)
            grant = await self.grants.get(tenant, grant_id, session=tx.session)
            if grant is None or grant.customer_id != customer_id:
                raise NotFound(f"no benefit grant {grant_id}", code="grant_not_found")
            now = utcnow()
            used = await self.grants.use(tenant, grant, uses, now, tx.session)
            if used is None:
                raise Conflict(_why_unusable(grant, uses, now), code="benefit_used_up")
            write_off = WriteOff(
                write_off_id=new_id("wo"),
                customer_id=customer_id,
                grant_id=grant_id,
                benefit_id=grant.benefit_id,
                uses=uses,
                used_at=now,
                used_by=operator,
                reference=reference,
            )
            await self.grants.record(tenant, write_off, key, tx.session)
            await tx.emit(_used(write_off, used.uses_left), tenant=tenant)
            return Done(write_off)

        return await settle(self.uow, work)

    async def reverse_write_off(
        self, tenant: str, write_off_id: str, *, reason: str, operator: str
    ) -> WriteOff:
        """Give a write-off's uses back; a second reversal is a 409."""

        async def work(tx: Tx) -> WriteOff:
            found = await self.grants.write_off(
                tenant, write_off_id=write_off_id, session=tx.session
            )
            if found is None:
                raise NotFound(f"no write-off {write_off_id}", code="write_off_not_found")
            now = utcnow()
            reversed_ = found.model_copy(
                update={"reversed_at": now, "reversed_by": operator, "reversal_reason": reason}
            )
            if not await self.grants.mark_reversed(tenant, reversed_, tx.session):
                raise Conflict("the write-off is reversed already", code="already_reversed")
            await self.grants.give_back(tenant, found.grant_id, found.uses, tx.session)
            await tx.emit(_use_reversed(reversed_, operator, now), tenant=tenant)
            return reversed_

        return await settle(self.uow, work)

    async def uses_of(self, tenant: str, grant_id: str) -> list[WriteOff]:
        return await self.grants.uses_of(tenant, grant_id)

    # --------------------------------------------------------------------- helpers

    async def _benefit(self, tenant: str, benefit_id: str, tx: Tx) -> Benefit:
        benefit = await self.definitions.benefit(tenant, benefit_id, session=tx.session)
        if benefit is None:
            raise NotFound(f"no benefit {benefit_id}", code="benefit_not_found")
        return benefit

    async def _card(self, tenant: str, card_id: str, tx: Tx) -> BenefitCard:
        card = await self.definitions.card(tenant, card_id, session=tx.session)
        if card is None:
            raise NotFound(f"no benefit card {card_id}", code="card_not_found")
        return card


def _same_customer(earlier: Grant | CardHolding | WriteOff, customer_id: str) -> object:
    if earlier.customer_id != customer_id:
        raise Conflict("this key was used for another customer", code="idempotency_key_reused")
    return earlier


def _why_unusable(grant: Grant, uses: int, now: datetime) -> str:
    if grant.expires_at is not None and grant.expires_at <= now:
        return "the benefit has expired"
    return f"{uses} uses asked, fewer are left"


def _purchased(holding: CardHolding, price: int, at: datetime) -> BenefitCardPurchased:
    return BenefitCardPurchased(
        customer_id=holding.customer_id,
        card_id=holding.card_id,
        holding_id=holding.holding_id,
        price=price,
        expires_at=holding.expires_at,
        purchased_at=at,
    )


def _renewed(holding: CardHolding, price: int, at: datetime) -> BenefitCardRenewed:
    return BenefitCardRenewed(
        customer_id=holding.customer_id,
        card_id=holding.card_id,
        holding_id=holding.holding_id,
        price=price,
        expires_at=holding.expires_at,
        renewed_at=at,
    )


def _used(write_off: WriteOff, remaining: int | None) -> BenefitUsed:
    return BenefitUsed(
        customer_id=write_off.customer_id,
        grant_id=write_off.grant_id,
        benefit_id=write_off.benefit_id,
        write_off_id=write_off.write_off_id,
        uses=write_off.uses,
        remaining=remaining,
        used_at=write_off.used_at,
    )


def _use_reversed(write_off: WriteOff, operator: str, at: datetime) -> BenefitUseReversed:
    return BenefitUseReversed(
        customer_id=write_off.customer_id,
        grant_id=write_off.grant_id,
        write_off_id=write_off.write_off_id,
        uses=write_off.uses,
        operator=operator,
        reversed_at=at,
    )


async def granted_multiplier(tx: Tx, tenant: str, customer_id: str, at: datetime) -> int:
    """The best points multiplier (percent) the customer holds by card or grant at `at`;
    100 when none. Read in the order's transaction."""
    kinds = await DefinitionStore(tx.db).benefits(
        tenant, kind=BenefitKind.POINTS_MULTIPLIER, session=tx.session
    )
    values = {b.benefit_id: b.value or 100 for b in kinds}
    if not values:
        return 100
    held = await GrantStore(tx.db).live(tenant, customer_id, list(values), at, tx.session)
    return max((values[g.benefit_id] for g in held), default=100)

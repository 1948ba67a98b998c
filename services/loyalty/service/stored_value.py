"""Stored-value use cases: top-up, spend, reversal of a spend, refund, freeze, unfreeze.

Each is one transaction that reads the account, applies the rule, and saves it over the
version read together with its movement and event. Concurrent spends of one balance
serialise on that version (the loser's transaction runs again and sees what the winner
left), so the balance can never be overdrawn. Each is idempotent by its source: the
payment reference of a top-up, the order of a spend, the request key otherwise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from contracts.loyalty import StoredValueChanged
from servicekit.clock import utcnow
from servicekit.errors import Conflict, NotFound
from servicekit.pagination import PageRequest
from servicekit.unit_of_work import Tx, UnitOfWork
from services.loyalty.domain import stored_value as rules
from services.loyalty.domain.stored_value import (
    Moved,
    StoredValueAccount,
    StoredValueScheme,
    ValueEntry,
)
from services.loyalty.store.races import settle
from services.loyalty.store.schemes import SchemeStore
from services.loyalty.store.stored_value import StoredValueStore


@dataclass(frozen=True)
class Moving:
    entry: ValueEntry
    account: StoredValueAccount
    repeated: bool = False


Move = Callable[[StoredValueAccount, StoredValueScheme], Moved]


class StoredValueService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.store = StoredValueStore(uow.db)
        self.schemes = SchemeStore(uow.db)

    async def set_scheme(self, tenant: str, scheme: StoredValueScheme, *, changed_by: str) -> None:
        await self.schemes.put(tenant, scheme, changed_by=changed_by)

    async def scheme(self, tenant: str) -> StoredValueScheme:
        return await self.schemes.get(tenant, StoredValueScheme) or StoredValueScheme()

    async def account(self, tenant: str, customer_id: str) -> StoredValueAccount:
        return await self.store.get(tenant, customer_id)

    async def entries(
        self, tenant: str, customer_id: str, page: PageRequest
    ) -> tuple[list[ValueEntry], str | None]:
        return await self.store.page(tenant, customer_id, page)

    async def top_up(self, tenant: str, customer_id: str, amount: int, payment: str) -> Moving:
        source = f"top_up:{payment}"
        now = utcnow()
        return await self._move(
            tenant,
            customer_id,
            source,
            lambda a, s: rules.top_up(a, s, amount, source=source, reference=payment, at=now),
            amount=amount,
        )

    async def spend(self, tenant: str, customer_id: str, amount: int, order_id: str) -> Moving:
        source = f"spend:{order_id}"
        now = utcnow()
        return await self._move(
            tenant,
            customer_id,
            source,
            lambda a, s: rules.spend(a, s, amount, source=source, reference=order_id, at=now),
            amount=amount,
        )

    async def reverse_spend(self, tenant: str, customer_id: str, order_id: str) -> Moving:
        source = f"spend:{order_id}:reversed"
        spent = await self.store.by_source(tenant, f"spend:{order_id}")
        if spent is None or spent.customer_id != customer_id:
            raise NotFound(f"no stored-value spend for order {order_id}", code="spend_not_found")
        now = utcnow()
        return await self._move(
            tenant,
            customer_id,
            source,
            lambda a, _: rules.reverse_spend(a, spent, source=source, at=now),
        )

    async def refund(
        self, tenant: str, customer_id: str, amount: int, *, key: str, operator: str
    ) -> Moving:
        source = f"request:{key}"
        now = utcnow()

        def move(account: StoredValueAccount, _: StoredValueScheme) -> Moved:
            return rules.refund(
                account, amount, source=source, reference=key, at=now, operator=operator
            )

        return await self._move(tenant, customer_id, source, move, amount=amount)

    async def set_frozen(
        self, tenant: str, customer_id: str, frozen: bool, *, reason: str, operator: str, key: str
    ) -> Moving:
        source = f"request:{key}"
        now = utcnow()

        def move(account: StoredValueAccount, _: StoredValueScheme) -> Moved:
            return rules.set_frozen(
                account, frozen, reason=reason, operator=operator, source=source, at=now
            )

        return await self._move(tenant, customer_id, source, move)

    async def _move(
        self, tenant: str, customer_id: str, source: str, move: Move, *, amount: int = 0
    ) -> Moving:
        async def work(tx: Tx) -> Moving:
            earlier = await self.store.by_source(tenant, source, session=tx.session)
            if earlier is not None:
                return await self._repeat(tx, tenant, customer_id, earlier, amount)
            scheme = await self.schemes.get(tenant, StoredValueScheme, session=tx.session)
            account = await self.store.get(tenant, customer_id, session=tx.session)
            after, entry = move(account, scheme or StoredValueScheme())
            saved = await self.store.put(tenant, after, entry, tx.session)
            await tx.emit(changed_event(saved, entry), tenant=tenant)
            return Moving(entry, saved)

        return await settle(self.uow, work)

    async def _repeat(
        self, tx: Tx, tenant: str, customer_id: str, earlier: ValueEntry, amount: int
    ) -> Moving:
        asked = {
            rules.Movement.TOPPED_UP: earlier.principal,
            rules.Movement.SPENT: -(earlier.principal + earlier.bonus),
            rules.Movement.REFUNDED: -earlier.principal,
        }.get(earlier.movement, amount)
        if earlier.customer_id != customer_id or asked != amount:
            raise Conflict(f"{earlier.source} was posted with other details", code="already_posted")
        account = await self.store.get(tenant, customer_id, session=tx.session)
        return Moving(earlier, account, repeated=True)


def changed_event(account: StoredValueAccount, entry: ValueEntry) -> StoredValueChanged:
    return StoredValueChanged(
        customer_id=account.customer_id,
        movement=str(entry.movement),
        reference=entry.reference,
        principal_change=entry.principal,
        bonus_change=entry.bonus,
        principal=account.principal,
        bonus=account.bonus,
        frozen=account.frozen,
        changed_at=entry.at,
    )

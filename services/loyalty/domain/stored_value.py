"""Stored value (储值): money a customer paid in ahead, split into principal (本金, what they
paid) and bonus (赠送金, what a top-up offer added).

- A top-up adds its amount to principal and the best matching offer's bonus to bonus.
- A spend takes from the two in the tenant's order: principal first (default: the bonus,
  which is never paid out, stays for later) or bonus first.
- A refund pays out principal only; once no principal is left, the bonus left is forfeited
  (it came with the principal).
- A frozen account neither spends nor refunds; the balance never goes negative.
Every movement is an entry with both changes and both balances after. Pure."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from servicekit.errors import Conflict, DomainError
from services.loyalty.domain.values import MAX_MONEY, new_id


class SpendOrder(StrEnum):
    PRINCIPAL_FIRST = "principal_first"
    BONUS_FIRST = "bonus_first"


class TopUpOffer(BaseModel):
    """Top up at least `min_amount`, get `bonus` (e.g. 100,000 gets 10,000: 分)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_amount: int = Field(ge=1, le=MAX_MONEY)
    bonus: int = Field(ge=0, le=MAX_MONEY)


class StoredValueScheme(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    offers: list[TopUpOffer] = Field(default_factory=list, max_length=20)
    spend_order: SpendOrder = SpendOrder.PRINCIPAL_FIRST

    def bonus_for(self, amount: int) -> int:
        matching = [o for o in self.offers if o.min_amount <= amount]
        return max(matching, key=lambda o: o.min_amount).bonus if matching else 0


class Movement(StrEnum):
    TOPPED_UP = "topped_up"
    SPENT = "spent"
    SPEND_REVERSED = "spend_reversed"
    REFUNDED = "refunded"
    FROZEN = "frozen"
    UNFROZEN = "unfrozen"
    #: A customer merge moved the balance to the survivor (an unmerge, back).
    TRANSFERRED_OUT = "transferred_out"
    TRANSFERRED_IN = "transferred_in"


class StoredValueAccount(BaseModel):
    model_config = ConfigDict(frozen=True)

    customer_id: str
    principal: int = 0
    bonus: int = 0
    frozen: bool = False
    frozen_reason: str | None = None
    version: int = 0

    @property
    def balance(self) -> int:
        return self.principal + self.bonus


class ValueEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    entry_id: str
    customer_id: str
    movement: Movement
    principal: int
    bonus: int
    #: Unique per tenant: the request or order that made this movement.
    source: str
    reference: str
    at: datetime
    principal_after: int
    bonus_after: int
    reason: str | None = None
    operator: str | None = None
    linked_entry_id: str | None = None


class InsufficientBalance(DomainError):
    def __init__(self, wanted: int, balance: int) -> None:
        super().__init__(
            f"{wanted} wanted, {balance} available",
            code="insufficient_balance",
            wanted=wanted,
            available=balance,
        )


def _entry(
    before: StoredValueAccount,
    after: StoredValueAccount,
    movement: Movement,
    *,
    source: str,
    reference: str,
    at: datetime,
    **extra: str | None,
) -> ValueEntry:
    return ValueEntry(
        entry_id=new_id("sv"),
        customer_id=after.customer_id,
        movement=movement,
        principal=after.principal - before.principal,
        bonus=after.bonus - before.bonus,
        source=source,
        reference=reference,
        at=at,
        principal_after=after.principal,
        bonus_after=after.bonus,
        **extra,
    )


Moved = tuple[StoredValueAccount, ValueEntry]


def top_up(
    account: StoredValueAccount,
    scheme: StoredValueScheme,
    amount: int,
    *,
    source: str,
    reference: str,
    at: datetime,
) -> Moved:
    after = account.model_copy(
        update={
            "principal": account.principal + amount,
            "bonus": account.bonus + scheme.bonus_for(amount),
        }
    )
    return after, _entry(
        account, after, Movement.TOPPED_UP, source=source, reference=reference, at=at
    )


def _usable(account: StoredValueAccount) -> None:
    if account.frozen:
        raise Conflict(f"the account is frozen: {account.frozen_reason}", code="account_frozen")


def spend(
    account: StoredValueAccount,
    scheme: StoredValueScheme,
    amount: int,
    *,
    source: str,
    reference: str,
    at: datetime,
) -> Moved:
    _usable(account)
    if amount > account.balance:
        raise InsufficientBalance(amount, account.balance)
    if scheme.spend_order == SpendOrder.BONUS_FIRST:
        from_bonus = min(amount, account.bonus)
        from_principal = amount - from_bonus
    else:
        from_principal = min(amount, account.principal)
        from_bonus = amount - from_principal
    after = account.model_copy(
        update={
            "principal": account.principal - from_principal,
            "bonus": account.bonus - from_bonus,
        }
    )
    return after, _entry(account, after, Movement.SPENT, source=source, reference=reference, at=at)


def reverse_spend(
    account: StoredValueAccount, spent: ValueEntry, *, source: str, at: datetime
) -> Moved:
    """An order paid with stored value is refunded: exactly its split goes back."""
    after = account.model_copy(
        update={
            "principal": account.principal - spent.principal,
            "bonus": account.bonus - spent.bonus,
        }
    )
    entry = _entry(
        account,
        after,
        Movement.SPEND_REVERSED,
        source=source,
        reference=spent.reference,
        at=at,
        linked_entry_id=spent.entry_id,
    )
    return after, entry


def refund(
    account: StoredValueAccount,
    amount: int,
    *,
    source: str,
    reference: str,
    at: datetime,
    operator: str,
) -> Moved:
    """Pay out `amount` of principal; the bonus is never paid out, and goes with the last
    of the principal."""
    _usable(account)
    if amount > account.principal:
        raise DomainError(
            f"{amount} asked, {account.principal} of principal can be refunded (bonus cannot)",
            code="refund_exceeds_principal",
            refundable=account.principal,
        )
    principal = account.principal - amount
    after = account.model_copy(
        update={"principal": principal, "bonus": account.bonus if principal else 0}
    )
    entry = _entry(
        account,
        after,
        Movement.REFUNDED,
        source=source,
        reference=reference,
        at=at,
        operator=operator,
    )
    return after, entry


def set_frozen(
    account: StoredValueAccount,
    frozen: bool,
    *,
    reason: str,
    operator: str,
    source: str,
    at: datetime,
) -> Moved:
    if account.frozen == frozen:
        raise Conflict(
            f"the account is {'already' if frozen else 'not'} frozen",
            code="already_frozen" if frozen else "not_frozen",
        )
    after = account.model_copy(
        update={"frozen": frozen, "frozen_reason": reason if frozen else None}
    )
    movement = Movement.FROZEN if frozen else Movement.UNFROZEN
    entry = _entry(
        account,
        after,
        movement,
        source=source,
        reference=reason,
        at=at,
        reason=reason,
        operator=operator,
    )
    return after, entry


def transfer(
    giver: StoredValueAccount,
    taker: StoredValueAccount,
    principal: int,
    bonus: int,
    *,
    source: str,
    reference: str,
    at: datetime,
) -> tuple[Moved, Moved]:
    """Move up to `principal` and `bonus` (never more than the giver has) to the taker."""
    principal, bonus = min(principal, giver.principal), min(bonus, giver.bonus)
    gave = giver.model_copy(
        update={"principal": giver.principal - principal, "bonus": giver.bonus - bonus}
    )
    took = taker.model_copy(
        update={"principal": taker.principal + principal, "bonus": taker.bonus + bonus}
    )
    out = _entry(
        giver, gave, Movement.TRANSFERRED_OUT, source=f"{source}:out", reference=reference, at=at
    )
    into = _entry(
        taker, took, Movement.TRANSFERRED_IN, source=f"{source}:in", reference=reference, at=at
    )
    return (gave, out), (took, into)

"""Exchanging points for a coupon: a saga across the ledger and the coupon service.

1. The points are debited (a ledger entry whose source is the request's key) and the
   exchange recorded as `debited`, in one transaction.
2. The coupon service is asked for a coupon, with the exchange id as the reference (the
   same reference always gets the same coupon, so asking again is safe).
3. A coupon: the exchange is `granted`. A definite refusal (409/422): the debit is
   restored by a linked entry and the exchange is `refused`. No definite answer (the
   service unreachable): the exchange stays `debited` and is asked again later, by the
   same request or by the recovery sweep, until one of the two outcomes.
Pure."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from services.loyalty.domain.values import new_id


class ExchangeState(StrEnum):
    DEBITED = "debited"
    GRANTED = "granted"
    REFUSED = "refused"


class Exchange(BaseModel):
    model_config = ConfigDict(frozen=True)

    exchange_id: str
    customer_id: str
    batch_id: str
    points: int
    key: str
    state: ExchangeState = ExchangeState.DEBITED
    spend_entry_id: str
    restore_entry_id: str | None = None
    coupon_id: str | None = None
    refusal_code: str | None = None
    attempts: int = 0
    created_at: datetime
    updated_at: datetime
    version: int = 0

    @property
    def source(self) -> str:
        return f"exchange:{self.key}"


def started(
    customer_id: str, batch_id: str, points: int, key: str, spend_entry_id: str, at: datetime
) -> Exchange:
    return Exchange(
        exchange_id=new_id("ex"),
        customer_id=customer_id,
        batch_id=batch_id,
        points=points,
        key=key,
        spend_entry_id=spend_entry_id,
        created_at=at,
        updated_at=at,
    )


def granted(exchange: Exchange, coupon_id: str, at: datetime) -> Exchange:
    return exchange.model_copy(
        update={
            "state": ExchangeState.GRANTED,
            "coupon_id": coupon_id,
            "attempts": exchange.attempts + 1,
            "updated_at": at,
        }
    )


def refused(exchange: Exchange, code: str, restore_entry_id: str, at: datetime) -> Exchange:
    return exchange.model_copy(
        update={
            "state": ExchangeState.REFUSED,
            "refusal_code": code,
            "restore_entry_id": restore_entry_id,
            "attempts": exchange.attempts + 1,
            "updated_at": at,
        }
    )


def unanswered(exchange: Exchange, at: datetime) -> Exchange:
    return exchange.model_copy(update={"attempts": exchange.attempts + 1, "updated_at": at})

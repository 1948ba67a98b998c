"""Partner exchange (异业合作): quotas, partner offers and the webhooks that report usage.
Pure: no I/O.

- A quota is what staff allocate a partner on one of our batches: codes it may take, and
  coupons it may issue straight to our customers (by mobile). The store keeps what is left
  (`codes_left`, `issues_left`) so taking is one conditional decrement that cannot go
  below zero, whatever the interleaving.
- A partner offer is the partner's own coupon (title, value, validity, its codes or a
  count) that we give to our customers.
- Webhooks: the body is signed with HMAC-SHA256 over `timestamp "." body` under a secret
  derived from our service secret, the partner and a version (rotating bumps the version),
  so no webhook secret is ever stored."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

WEBHOOK_SIGNATURE_HEADER = "X-Webhook-Signature"
WEBHOOK_TIMESTAMP_HEADER = "X-Webhook-Timestamp"
WEBHOOK_ID_HEADER = "X-Webhook-Id"
PARTNER_ID_PATTERN = r"^ptn_[0-9a-f]{24}$"


class Quota(BaseModel):
    tenant: str
    batch_id: str
    partner_id: str
    codes: int
    codes_left: int
    direct_issues: int
    issues_left: int
    updated_by: str
    updated_at: datetime


class QuotaChange(BaseModel):
    """A new allocation measured against what the partner already used."""

    codes_left: int
    issues_left: int


def reallocate(current: Quota | None, codes: int, direct_issues: int) -> QuotaChange | None:
    """What is left after allocating new totals; None when a total is below what the
    partner already took (an allocation cannot take back what was handed out)."""
    if current is None:
        return QuotaChange(codes_left=codes, issues_left=direct_issues)
    codes_used = current.codes - current.codes_left
    issues_used = current.direct_issues - current.issues_left
    if codes < codes_used or direct_issues < issues_used:
        return None
    return QuotaChange(codes_left=codes - codes_used, issues_left=direct_issues - issues_used)


class PartnerOffer(BaseModel):
    """A partner's own coupon that we give to our customers."""

    id: str
    tenant: str
    partner_id: str
    title: str
    #: Face value in minor units (分), as the partner states it.
    value: int
    valid_from: datetime
    valid_until: datetime
    #: How many may be given: the number of codes the partner sent, or its count.
    total: int
    left: int
    has_codes: bool
    created_at: datetime


class PartnerCoupon(BaseModel):
    """A partner offer given to one of our customers (listed apart from the wallet: it is
    used at the partner, not at our checkout)."""

    id: str
    tenant: str
    offer_id: str
    partner_id: str
    customer_id: str
    #: Which of the offer's units this is (1..total), and the partner's code for it.
    number: int
    code: str | None
    title: str
    value: int
    valid_from: datetime
    valid_until: datetime
    given_by: str
    given_at: datetime


class OfferRefusal(StrEnum):
    EXHAUSTED = "offer_exhausted"
    NOT_VALID = "offer_not_valid"


def offer_refusal(offer: PartnerOffer, now: datetime) -> OfferRefusal | None:
    if not offer.valid_from <= now < offer.valid_until:
        return OfferRefusal.NOT_VALID
    if offer.left <= 0:
        return OfferRefusal.EXHAUSTED
    return None


# ---------------------------------------------------------------------------- webhooks


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"


def webhook_secret(service_secret: str, tenant: str, partner_id: str, version: int) -> str:
    """The partner's webhook secret: derived, never stored; a new version is a new secret."""
    message = f"coupon.partner-webhook.v1\x1f{tenant}\x1f{partner_id}\x1f{version}".encode()
    return hmac.new(service_secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 over `timestamp "." body`: what the partner recomputes."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signature_matches(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(webhook_signature(secret, timestamp, body), signature)

"""Partner exchange rules: reallocating a quota keeps what was used, offers refuse outside
their validity or when given out, webhook secrets and signatures, and what a used coupon
tells its partner."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from contracts.coupon import CouponRedeemed
from services.coupon.domain.coupons import Coupon, CouponState
from services.coupon.domain.partners import (
    OfferRefusal,
    PartnerOffer,
    Quota,
    offer_refusal,
    reallocate,
    signature_matches,
    webhook_secret,
    webhook_signature,
)
from services.coupon.service.partner_webhooks import coupon_redeemed

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
PARTNER = "ptn_" + "e5" * 12


def quota(codes: int, codes_left: int, issues: int, issues_left: int) -> Quota:
    return Quota(
        tenant="t", batch_id="b", partner_id=PARTNER, codes=codes, codes_left=codes_left,
        direct_issues=issues, issues_left=issues_left, updated_by="ops", updated_at=NOW,
    )  # fmt: skip


def test_a_first_allocation_leaves_everything() -> None:
    change = reallocate(None, 10, 3)
    assert change is not None and (change.codes_left, change.issues_left) == (10, 3)


@given(
    total=st.integers(0, 1_000),
    used=st.integers(0, 1_000),
    new_total=st.integers(0, 2_000),
)
def test_reallocating_keeps_what_was_used(total: int, used: int, new_total: int) -> None:
    used = min(used, total)
    change = reallocate(quota(total, total - used, 5, 5), new_total, 5)
    if new_total < used:
        assert change is None
    else:
        assert change is not None and change.codes_left == new_total - used


def offer(**fields: object) -> PartnerOffer:
    values: dict[str, object] = {
        "id": "pof_1", "tenant": "t", "partner_id": PARTNER, "title": "里程",
        "value": 100, "valid_from": NOW - timedelta(days=1), "valid_until": NOW + timedelta(days=1),
        "total": 2, "left": 2, "has_codes": False, "created_at": NOW,
    }  # fmt: skip
    return PartnerOffer.model_validate({**values, **fields})


def test_offers_refuse_outside_validity_and_when_given_out() -> None:
    assert offer_refusal(offer(), NOW) is None
    assert offer_refusal(offer(left=0), NOW) == OfferRefusal.EXHAUSTED
    assert (
        offer_refusal(offer(valid_from=NOW + timedelta(seconds=1)), NOW) == OfferRefusal.NOT_VALID
    )
    assert offer_refusal(offer(valid_until=NOW), NOW) == OfferRefusal.NOT_VALID


def test_webhook_secrets_differ_by_tenant_partner_version_and_service_secret() -> None:
    base = webhook_secret("s", "t", PARTNER, 1)
    assert base == webhook_secret("s", "t", PARTNER, 1)
    others = {
        webhook_secret("s", "t2", PARTNER, 1),
        webhook_secret("s", "t", "ptn_" + "f6" * 12, 1),
        webhook_secret("s", "t", PARTNER, 2),
        webhook_secret("s2", "t", PARTNER, 1),
    }
    assert base not in others and len(others) == 4


def test_a_webhook_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    body = b'{"id":"whd_1"}'
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhook_signature("k", "1700000000", body) == "v1=" + expected
    assert signature_matches("k", "1700000000", body, "v1=" + expected)
    assert not signature_matches("k", "1700000001", body, "v1=" + expected)
    assert not signature_matches("k", "1700000000", body + b" ", "v1=" + expected)


def used(channel: str, reference: str | None) -> Coupon:
    return Coupon(
        id="cpn_1", batch_id="bat_1", campaign_id="cmp_1", customer_id="cus_1",
        channel=channel, reference=reference, state=CouponState.USED, face_value=1_000,
        valid_from=NOW, valid_until=NOW + timedelta(days=7), claimed_at=NOW,
    )  # fmt: skip


def redeemed() -> CouponRedeemed:
    return CouponRedeemed(
        coupon_id="cpn_1", batch_id="bat_1", campaign_id="cmp_1", customer_id="cus_1",
        order_id="o-1", discount=1_000, redeemed_at=NOW,
    )  # fmt: skip


def test_what_a_used_coupon_tells_its_partner() -> None:
    channel = f"partner:{PARTNER}"
    direct = coupon_redeemed("t", "evt-1", redeemed(), used(channel, f"{channel}:their-7"))
    assert direct is not None and direct.partner_id == PARTNER
    assert direct.data["via"] == "direct_issue" and direct.data["reference"] == "their-7"
    code = coupon_redeemed("t", "evt-2", redeemed(), used(channel, "lot_ab.3"))
    assert code is not None and code.data["via"] == "code" and code.data["code_id"] == "lot_ab.3"
    assert "customer_id" not in code.data  # the partner learns no customer of ours
    assert coupon_redeemed("t", "evt-3", redeemed(), used("self_claim", None)) is None
    again = coupon_redeemed("t", "evt-1", redeemed(), used(channel, f"{channel}:their-7"))
    assert again is not None and again.id == direct.id  # one delivery per event

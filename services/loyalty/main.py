"""Loyalty service: points ledger of lots, tiers, benefits and benefit cards, stored value."""

from fastapi import FastAPI

from servicekit.app import create_service_app
from services.loyalty import api, store
from services.loyalty.clients.coupons import CouponClient
from services.loyalty.events import SUBSCRIPTIONS
from services.loyalty.settings import LoyaltySettings
from services.loyalty.workers import WORKERS


def create_app(settings: LoyaltySettings | None = None) -> FastAPI:
    settings = settings or LoyaltySettings()
    coupons = CouponClient(
        settings.coupon_base_url,
        timeout_seconds=settings.coupon_timeout_seconds,
        attempts=settings.coupon_attempts,
    )
    return create_service_app(
        settings,
        title="Loyalty service",
        description="Points ledger of lots, tiers, benefits and benefit cards, stored value.",
        routers=[api.router],
        indexes=store.INDEXES,
        subscriptions=SUBSCRIPTIONS,
        workers=WORKERS,
        state={"coupons": coupons},
    )

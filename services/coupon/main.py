from fastapi import FastAPI

from servicekit.app import create_service_app
from services.coupon import api, store
from services.coupon.events import SUBSCRIPTIONS
from services.coupon.settings import CouponSettings


def create_app(settings: CouponSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or CouponSettings(),
        title="Coupon service",
        description="Budgets with approval, batches, claims, wallet, redemption, channels, alerts.",
        routers=[api.router],
        indexes=store.INDEXES,
        subscriptions=SUBSCRIPTIONS,
    )

"""Coupon service: budgets with approval, batches, claims, wallet, redemption, rate limits."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from servicekit.app import create_service_app
from servicekit.errors import problem, public_path
from services.coupon import api, store
from services.coupon.events import subscriptions
from services.coupon.service.parts import WORKERS
from services.coupon.service.rate_limits import RateLimited
from services.coupon.settings import CouponSettings


def create_app(settings: CouponSettings | None = None) -> FastAPI:
    settings = settings or CouponSettings()
    app = create_service_app(
        settings,
        title="Coupon service",
        description="Budgets with approval, batches, claims, wallet, redemption, rate limits.",
        routers=[api.router],
        indexes=store.INDEXES,
        subscriptions=subscriptions(settings),
        workers=WORKERS,
    )
    app.add_exception_handler(RateLimited, _too_many)
    return app


async def _too_many(request: Request, exc: Exception) -> JSONResponse:
    """429 with Retry-After: the seconds until the window that refused the request ends."""
    assert isinstance(exc, RateLimited)
    response = problem(
        exc.status, exc.title, exc.detail, instance=public_path(request), code=exc.code, **exc.extra
    )
    response.headers["Retry-After"] = str(exc.retry_after)
    return response

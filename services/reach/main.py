"""Reach service: outreach channels, templates, campaigns, consent, caps and receipts."""

from fastapi import FastAPI

from servicekit.app import create_service_app
from services.reach import api, store
from services.reach.events import subscriptions
from services.reach.settings import ReachSettings
from services.reach.workers import workers


def create_app(settings: ReachSettings | None = None) -> FastAPI:
    settings = settings or ReachSettings()
    return create_service_app(
        settings,
        title="Reach service",
        description="Outreach channels and providers, templates, campaigns to segments and "
        "triggered by events, consent, frequency caps, quiet hours, receipts, attribution.",
        routers=[api.router],
        indexes=store.INDEXES,
        subscriptions=subscriptions(settings),
        workers=workers(),
    )
